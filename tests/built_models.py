"""ONNX models built with onnx.helper for tests and benchmarks that need a model of a known
cost (no weights from anywhere: random, seeded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper


def heavy_model(path: Path, side: int = 320, layers: int = 6, channels: int = 48) -> None:
    """A deliberately expensive 'classifier': a stack of 3x3 convolutions at full resolution,
    then global pooling to 3 scores. Its cost is what a gate saves."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 3, side, side])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])
    nodes, inits = [], []
    prev, prev_c = "pixels", 3
    for i in range(layers):
        w = (rng.standard_normal((channels, prev_c, 3, 3)) * 0.05).astype(np.float32)
        inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, w.shape, w.ravel()))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev, prev_c = f"r{i}", channels
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"]))
    w = (rng.standard_normal((channels, 3)) * 0.05).astype(np.float32)
    inits.append(helper.make_tensor("fc", TensorProto.FLOAT, w.shape, w.ravel()))
    nodes.append(helper.make_node("MatMul", ["flat", "fc"], ["scores"]))
    graph = helper.make_graph(nodes, "heavy", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
