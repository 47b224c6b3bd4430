"""MTCNN face detector (P-Net, R-Net, O-Net) from the facenet-pytorch wheel to three ONNX files.

The wheel ships the weights as torch state dicts (``facenet_pytorch/data/{p,r,o}net.pt``). We read
them straight out of the zip without torch (:mod:`argus.convert.torchfile`) and write the three
networks here layer by layer with ``onnx.helper``, so the package itself (and its torch and
torchvision dependencies) is never installed or imported. The tests check these graphs against
facenet-pytorch's modules rebuilt in torch (``tests/convert/reference.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from argus.convert.graph import ConversionError, GraphBuilder
from argus.convert.torchfile import load_state_dict
from argus.convert.wheels import PinnedWheel, fetch_wheel, read_member

log = logging.getLogger(__name__)

WHEEL = PinnedWheel(
    "facenet-pytorch",
    "2.6.0",
    "facenet_pytorch-2.6.0-py3-none-any.whl",
    "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
)
UPSTREAM = "https://github.com/timesler/facenet-pytorch"
NETWORKS = ("pnet", "rnet", "onet")
OUTPUTS = {"pnet": ("reg", "prob"), "rnet": ("reg", "prob"), "onet": ("reg", "landmarks", "prob")}
# Input shapes each built network is run on once, to check it before it is packaged.
CHECK_SHAPES = {
    "pnet": [(1, 3, 12, 12), (2, 3, 61, 40)],
    "rnet": [(1, 3, 24, 24), (5, 3, 24, 24)],
    "onet": [(1, 3, 48, 48), (3, 3, 48, 48)],
}


class _Net:
    """One network's graph under construction, reading its layers from the state dict."""

    def __init__(self, name: str, weights: dict[str, np.ndarray]) -> None:
        self.graph = GraphBuilder(name)
        self.name = name
        self.weights = weights
        self.used: set[str] = set()

    def w(self, key: str) -> np.ndarray:
        try:
            value = self.weights[key]
        except KeyError:
            raise ConversionError(f"{self.name}.pt has no {key}") from None
        self.used.add(key)
        return value

    def conv_prelu(self, x: str, conv: str, prelu: str) -> str:
        y = self.graph.conv(x, conv, self.w(f"{conv}.weight"), self.w(f"{conv}.bias"))
        return self.graph.prelu(y, prelu, self.w(f"{prelu}.weight"), rank=4)

    def pool(self, x: str, name: str, kernel: int) -> str:
        return self.graph.node(
            "MaxPool", [x], name, kernel_shape=[kernel, kernel], strides=[2, 2], ceil_mode=1
        )

    def dense(self, x: str, name: str) -> str:
        return self.graph.linear(x, name, self.w(f"{name}.weight"), self.w(f"{name}.bias"))

    def flatten_whc(self, x: str) -> str:
        """(N, C, H, W) -> (N, W*H*C): the dense weights were converted from Caffe/TensorFlow in
        that order, so the feature map is transposed to (N, W, H, C) before flattening."""
        t = self.graph.node("Transpose", [x], f"{x}.whc", perm=[0, 3, 2, 1])
        return self.graph.node("Flatten", [t], "flat")

    def softmax(self, x: str, name: str) -> str:
        return self.graph.node("Softmax", [x], name, axis=1)

    def finish(
        self, shape: list[int | str | None], outputs: dict[str, tuple[str, list[Any]]]
    ) -> onnx.ModelProto:
        unused = sorted(set(self.weights) - self.used)
        if unused:
            raise ConversionError(f"{self.name}.pt has weights the network does not use: {unused}")
        return self.graph.model(
            [("input", shape)], [(k, node, dims) for k, (node, dims) in outputs.items()]
        )


def pnet(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Fully convolutional proposal net: 12x12 windows at stride 2, any input size."""
    n = _Net("pnet", weights)
    x = n.conv_prelu("input", "conv1", "prelu1")
    x = n.pool(x, "pool1", 2)
    x = n.conv_prelu(x, "conv2", "prelu2")
    x = n.conv_prelu(x, "conv3", "prelu3")
    score = n.graph.conv(x, "conv4_1", n.w("conv4_1.weight"), n.w("conv4_1.bias"))
    prob = n.softmax(score, "softmax4_1")
    reg = n.graph.conv(x, "conv4_2", n.w("conv4_2.weight"), n.w("conv4_2.bias"))
    out: list[int | str | None] = ["batch", None, None, None]
    return n.finish(["batch", 3, "height", "width"], {"reg": (reg, out), "prob": (prob, out)})


def rnet(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Refinement net on 24x24 crops."""
    n = _Net("rnet", weights)
    x = n.pool(n.conv_prelu("input", "conv1", "prelu1"), "pool1", 3)
    x = n.pool(n.conv_prelu(x, "conv2", "prelu2"), "pool2", 3)
    x = n.flatten_whc(n.conv_prelu(x, "conv3", "prelu3"))
    x = n.graph.prelu(n.dense(x, "dense4"), "prelu4", n.w("prelu4.weight"), rank=2)
    prob = n.softmax(n.dense(x, "dense5_1"), "softmax5_1")
    reg = n.dense(x, "dense5_2")
    return n.finish(
        ["batch", 3, 24, 24], {"reg": (reg, ["batch", 4]), "prob": (prob, ["batch", 2])}
    )


def onet(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Output net on 48x48 crops: box regression, five landmarks, face probability."""
    n = _Net("onet", weights)
    x = n.pool(n.conv_prelu("input", "conv1", "prelu1"), "pool1", 3)
    x = n.pool(n.conv_prelu(x, "conv2", "prelu2"), "pool2", 3)
    x = n.pool(n.conv_prelu(x, "conv3", "prelu3"), "pool3", 2)
    x = n.flatten_whc(n.conv_prelu(x, "conv4", "prelu4"))
    x = n.graph.prelu(n.dense(x, "dense5"), "prelu5", n.w("prelu5.weight"), rank=2)
    prob = n.softmax(n.dense(x, "dense6_1"), "softmax6_1")
    return n.finish(
        ["batch", 3, 48, 48],
        {
            "reg": (n.dense(x, "dense6_2"), ["batch", 4]),
            "landmarks": (n.dense(x, "dense6_3"), ["batch", 10]),
            "prob": (prob, ["batch", 2]),
        },
    )


BUILDERS = {"pnet": pnet, "rnet": rnet, "onet": onet}


def state_dicts(cache_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """The three networks' weights from the pinned wheel, as numpy arrays."""
    wheel_path = fetch_wheel(WHEEL, cache_dir)
    return {
        name: load_state_dict(read_member(wheel_path, f"facenet_pytorch/data/{name}.pt"))
        for name in NETWORKS
    }


def _check(name: str, path: Path) -> None:
    """Run the built graph once per check shape: outputs named, shaped and finite."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if tuple(names) != OUTPUTS[name]:
        raise ConversionError(f"{name}.onnx has outputs {names}, expected {list(OUTPUTS[name])}")
    rng = np.random.default_rng(0)
    for shape in CHECK_SHAPES[name]:
        x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        for out_name, value in zip(names, session.run(None, {"input": x}), strict=True):
            if value.shape[0] != shape[0] or not np.isfinite(value).all():
                raise ConversionError(
                    f"{name}.onnx output {out_name} is {value.shape} (or not finite) for {shape}"
                )


def build(workdir: Path, cache_dir: Path) -> dict[str, Any]:
    """Write ``pnet.onnx``, ``rnet.onnx`` and ``onet.onnx`` into ``workdir``.

    Returns the manifest fields of the package; the caller adds the file digests.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for name, weights in state_dicts(cache_dir).items():
        dest = workdir / f"{name}.onnx"
        onnx.save(BUILDERS[name](weights), str(dest))
        _check(name, dest)
        log.info("built %s", dest.name)
    return {
        "name": "mtcnn",
        "task": "faces",
        "description": (
            "MTCNN face detector (P-Net/R-Net/O-Net cascade, Zhang et al. 2016) with the "
            "weights of facenet-pytorch 2.6.0; boxes, scores and five landmarks per face."
        ),
        "license": "MIT",
        "source": {
            "kind": "wheel",
            "wheels": [WHEEL.to_source()],
            "upstream": UPSTREAM,
            "converter": "argus.convert.mtcnn",
        },
        "models": {name: f"{name}.onnx" for name in NETWORKS},
        "options": {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709},
        "runtime": {"max_batch_size": 1, "max_wait_ms": 0},
    }
