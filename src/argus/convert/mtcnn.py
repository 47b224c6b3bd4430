"""MTCNN face detector (P-Net, R-Net, O-Net) from the facenet-pytorch wheel to three ONNX files.

The wheel ships the weights as torch state dicts (``facenet_pytorch/data/{p,r,o}net.pt``). We read
them straight out of the zip and load them into networks rebuilt here, so the package itself (and
its torchvision dependency) is never installed or imported. Torch is imported only inside the
functions here: serving runs the ONNX files with onnxruntime and never needs it.

The networks are kept in this module (rather than in ``build``) so the benchmark can run the same
cascade on the torch networks as a same-process baseline; see :func:`torch_networks`.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from argus.convert.wheels import PinnedWheel, WheelError, fetch_wheel, read_member
from argus.errors import ArgusError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

WHEEL = PinnedWheel(
    "facenet-pytorch",
    "2.6.0",
    "facenet_pytorch-2.6.0-py3-none-any.whl",
    "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
)
UPSTREAM = "https://github.com/timesler/facenet-pytorch"
NETWORKS = ("pnet", "rnet", "onet")
# Largest difference allowed between onnxruntime and torch on the same input.
TOLERANCE = 1e-4


class ConversionError(ArgusError):
    """The exported ONNX model does not reproduce the torch network."""

    status = 500


def _modules() -> dict[str, type[torch.nn.Module]]:
    """The three MTCNN networks, defined lazily so importing this module does not import torch.

    Layer names match facenet-pytorch's state dicts. The dense layers see the feature map
    permuted to (N, W, H, C) before flattening, because the weights were converted from the
    original Caffe/TensorFlow models in that order.
    """
    import torch
    from torch import Tensor, nn

    class PReLU(nn.PReLU):
        """``nn.PReLU`` that exports as ``relu(x) - a * relu(-x)``.

        The same values bit for bit (one term is always exactly zero), but onnxruntime runs
        these four plain element-wise ops about 3x faster than its broadcasting ``PRelu``
        kernel, which was the largest single cost in all three networks.
        """

        def forward(self, x: Tensor) -> Tensor:
            if not torch.onnx.is_in_onnx_export():
                return super().forward(x)
            slope = self.weight.reshape(1, -1, *([1] * (x.dim() - 2)))
            return torch.relu(x) - slope * torch.relu(-x)

    class PNet(nn.Module):
        """Fully convolutional proposal net: 12x12 windows at stride 2, any input size."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
            self.prelu1 = PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
            self.prelu2 = PReLU(16)
            self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
            self.prelu3 = PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
            self.softmax4_1 = nn.Softmax(dim=1)
            self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            x = self.prelu1(self.conv1(x))
            x = self.pool1(x)
            x = self.prelu2(self.conv2(x))
            x = self.prelu3(self.conv3(x))
            prob = self.softmax4_1(self.conv4_1(x))
            reg = self.conv4_2(x)
            return reg, prob

    class RNet(nn.Module):
        """Refinement net on 24x24 crops."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
            self.prelu1 = PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
            self.prelu2 = PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
            self.prelu3 = PReLU(64)
            self.dense4 = nn.Linear(576, 128)
            self.prelu4 = PReLU(128)
            self.dense5_1 = nn.Linear(128, 2)
            self.softmax5_1 = nn.Softmax(dim=1)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x))
            x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            x = self.prelu4(self.dense4(x))
            prob = self.softmax5_1(self.dense5_1(x))
            reg = self.dense5_2(x)
            return reg, prob

    class ONet(nn.Module):
        """Output net on 48x48 crops: box regression, five landmarks, face probability."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
            self.prelu1 = PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
            self.prelu2 = PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
            self.prelu3 = PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
            self.prelu4 = PReLU(128)
            self.dense5 = nn.Linear(1152, 256)
            self.prelu5 = PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.softmax6_1 = nn.Softmax(dim=1)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            x = self.prelu5(self.dense5(x))
            prob = self.softmax6_1(self.dense6_1(x))
            reg = self.dense6_2(x)
            landmarks = self.dense6_3(x)
            return reg, landmarks, prob

    return {"pnet": PNet, "rnet": RNet, "onet": ONet}


# Per network: ONNX input/output names, the dynamic axes, and a sample input shape for the
# export trace and the torch-vs-ORT check.
_SPECS: dict[str, dict[str, Any]] = {
    "pnet": {
        "outputs": ["reg", "prob"],
        "dynamic": {"input": {0: "batch", 2: "height", 3: "width"}},
        "sample": (1, 3, 97, 131),
        "check": [(1, 3, 12, 12), (2, 3, 61, 40), (1, 3, 308, 308)],
    },
    "rnet": {
        "outputs": ["reg", "prob"],
        "dynamic": {"input": {0: "batch"}},
        "sample": (3, 3, 24, 24),
        "check": [(1, 3, 24, 24), (17, 3, 24, 24)],
    },
    "onet": {
        "outputs": ["reg", "landmarks", "prob"],
        "dynamic": {"input": {0: "batch"}},
        "sample": (3, 3, 48, 48),
        "check": [(1, 3, 48, 48), (9, 3, 48, 48)],
    },
}


def torch_networks(cache_dir: Path) -> dict[str, torch.nn.Module]:
    """The three networks in torch, in eval mode, with facenet-pytorch's weights loaded."""
    import torch

    wheel_path = fetch_wheel(WHEEL, cache_dir)
    nets: dict[str, torch.nn.Module] = {}
    for name, cls in _modules().items():
        member = f"facenet_pytorch/data/{name}.pt"
        blob = read_member(wheel_path, member)
        try:
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a bad pickle
            raise WheelError(
                f"{WHEEL.filename}: {member} is not a torch state dict: {exc}"
            ) from exc
        net = cls()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ConversionError(
                f"{member} does not fit the rebuilt {name.upper()} architecture: {exc}"
            ) from exc
        nets[name] = net.eval()
    return nets


def _export(net: torch.nn.Module, name: str, dest: Path) -> None:
    import torch

    spec = _SPECS[name]
    sample = torch.rand(*spec["sample"]) * 2 - 1
    # The legacy TorchScript exporter is chosen on purpose (small convolutional graphs, plain
    # dynamic axes); torch and its internals emit deprecation warnings about it on every call.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (sample,),
            str(dest),
            input_names=["input"],
            output_names=spec["outputs"],
            dynamic_axes=spec["dynamic"],
            opset_version=17,
            dynamo=False,
        )


def _check(net: torch.nn.Module, name: str, path: Path) -> float:
    """Largest |ORT - torch| over a few input shapes; raises if above :data:`TOLERANCE`."""
    import onnx
    import onnxruntime as ort
    import torch

    onnx.checker.check_model(str(path))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in _SPECS[name]["check"]:
        x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in net(torch.from_numpy(x))]
        actual = session.run(None, {"input": x})
        for out_name, exp, act in zip(_SPECS[name]["outputs"], expected, actual, strict=True):
            if exp.shape != act.shape:
                raise ConversionError(
                    f"{name}.onnx output {out_name} has shape {act.shape} for input {shape}, "
                    f"torch gives {exp.shape}"
                )
            diff = float(np.max(np.abs(exp - act))) if exp.size else 0.0
            if not diff < TOLERANCE:
                raise ConversionError(
                    f"{name}.onnx output {out_name} differs from torch by {diff:.2e} for input "
                    f"{shape} (allowed {TOLERANCE:.0e})"
                )
            worst = max(worst, diff)
    return worst


def build(workdir: Path, cache_dir: Path) -> dict[str, Any]:
    """Write ``pnet.onnx``, ``rnet.onnx`` and ``onet.onnx`` into ``workdir``.

    Returns the manifest fields of the package; the caller adds the file digests.
    """
    import torch

    workdir.mkdir(parents=True, exist_ok=True)
    nets = torch_networks(cache_dir)
    # Exporting and checking run a few small convolutions; more threads than cores only hurts
    # on the shared build machines.
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        for name, net in nets.items():
            dest = workdir / f"{name}.onnx"
            _export(net, name, dest)
            worst = _check(net, name, dest)
            log.info("exported %s (max |ORT - torch| = %.1e)", dest.name, worst)
    finally:
        torch.set_num_threads(threads)
    return {
        "name": "mtcnn",
        "task": "faces",
        "description": (
            "MTCNN face detector (P-Net/R-Net/O-Net cascade, Zhang et al. 2016) with the "
            "weights of facenet-pytorch 2.6.0; boxes, scores and five landmarks per face."
        ),
        "license": "MIT",
        "source": {"kind": "wheel", "wheels": [WHEEL.to_source()], "upstream": UPSTREAM},
        "models": {name: f"{name}.onnx" for name in NETWORKS},
        "options": {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709},
        "runtime": {"max_batch_size": 1, "max_wait_ms": 0},
    }
