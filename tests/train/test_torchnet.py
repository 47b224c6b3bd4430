from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from argus.errors import BadInput
from argus.train.torchnet import OnnxNet
from tests.train.conftest import open_registry


def test_the_torch_network_computes_what_onnx_runtime_computes(pulled_home: Path) -> None:
    registry, _ = open_registry(pulled_home)
    path = registry.resolve("efficientnet-lite0").path / "model.onnx"
    x = np.random.default_rng(0).normal(0, 1, size=(2, 3, 224, 224)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["features"], {"input": x}
    )[0]
    net = OnnxNet(onnx.load(str(path)), "features").eval()
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.shape == (2, 1280)
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-3)
    # every weight is trainable; BatchNorm statistics are not parameters
    names = set(net.index)
    assert "_conv_stem.weight" in names and "_bn0.weight" in names
    assert "_bn0.running_mean" not in names and "_fc.weight" not in names


def test_an_operator_it_cannot_run_is_named(tmp_path: Path) -> None:
    node = onnx.helper.make_node("Softmax", ["input"], ["features"])
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("input", 1, [1, 3])],
        [onnx.helper.make_tensor_value_info("features", 1, [1, 3])],
    )
    with pytest.raises(BadInput, match="cannot run the base's Softmax nodes"):
        OnnxNet(onnx.helper.make_model(graph), "features")
