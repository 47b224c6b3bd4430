"""Error-compensating int8 rounding: the windows it reads are the ones the convolution sees
(checked against ONNX Runtime's own Conv), the weights land on ONNX Runtime's grid, and on
correlated inputs the layer's output error is smaller than rounding to nearest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from argus.optimize.quantize import int8_rounded
from argus.optimize.rounding import Layer, _patches, compensated, grid, nearest, round_weights


def conv_model(path: Path, w: np.ndarray, group: int, **attrs: list[int]) -> onnx.NodeProto:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=group, **attrs)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return node


def correlated(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs whose channels share most of their signal (as a network's activations do): the
    case where the errors of one channel's weights can cancel."""
    common = rng.normal(0, 1, (shape[0], 1, *shape[2:]))
    return (common + 0.3 * rng.normal(0, 1, shape) + 0.5).astype(np.float32)


def test_windows_are_what_onnx_runtime_convolves(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 6, 11, 9)).astype(np.float32)
    cases = [(rng.normal(0, 1, (6, 1, 3, 3)), 6, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
             (rng.normal(0, 1, (6, 1, 5, 5)), 6, {"pads": [2, 1, 2, 1]}),
             (rng.normal(0, 1, (4, 6, 3, 3)), 1, {"pads": [0, 1, 1, 0], "strides": [1, 2]})]
    for w, group, attrs in cases:
        w = w.astype(np.float32)
        node = conv_model(tmp_path / "c.onnx", w, group, **attrs)
        want = ort.InferenceSession(str(tmp_path / "c.onnx"),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        p = _patches(x, node, (w.shape[2], w.shape[3]))  # (n, c, positions, k)
        if group > 1:
            got = np.einsum("ncpk,ck->ncp", p, w.reshape(w.shape[0], -1))
        else:
            rows = p.transpose(0, 2, 1, 3).reshape(p.shape[0], p.shape[2], -1)
            got = np.einsum("npk,ok->nop", rows, w.reshape(w.shape[0], -1))
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def test_weights_are_on_onnx_runtimes_grid_and_closer_in_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.2, (16, 8, 3, 3)).astype(np.float32)
    node = conv_model(tmp_path / "c.onnx", w, 1, pads=[1, 1, 1, 1])
    layer = Layer(node, w)
    x = correlated(rng, (6, 8, 12, 12))
    layer.add(x)
    q = layer.rounded()
    # On the grid ONNX Runtime derives from these very weights: rounding them again is a no-op.
    np.testing.assert_array_equal(int8_rounded(q), q)
    np.testing.assert_allclose(grid(q.reshape(16, -1)), grid(w.reshape(16, -1)), rtol=1e-6)
    steps = np.abs(q - w).reshape(16, -1) / grid(w.reshape(16, -1))[:, None]
    assert steps.max() > 0.5  # some weights were moved past their nearest step on purpose
    p = _patches(x, node, (3, 3)).transpose(0, 2, 1, 3).reshape(-1, 72).astype(np.float64)

    def error(v: np.ndarray) -> float:
        return float(np.square(p @ (v.reshape(16, -1) - w.reshape(16, -1)).T).mean())

    near = nearest(w.reshape(16, -1).astype(np.float64))
    assert error(q) < 0.7 * error(near), (error(q), error(near))


def test_depthwise_channels_each_use_their_own_inputs() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.3, (3, 9))
    # Channel 0's inputs are strongly correlated, channel 1's independent, channel 2 sees zeros.
    h = np.stack([np.full((9, 9), 0.9) + 0.1 * np.eye(9), np.eye(9), np.zeros((9, 9))])
    q = compensated(w, h)
    near = nearest(w)
    np.testing.assert_array_equal(q[2], near[2])  # nothing to compensate with: nearest
    # Independent inputs: GPTQ's update is zero (up to the damping), so nearest again.
    np.testing.assert_allclose(q[1], near[1])
    assert not np.allclose(q[0], near[0])


def test_a_whole_graph_keeps_every_layers_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32)
    conv_model(tmp_path / "c.onnx", w, 8, pads=[1, 1, 1, 1])
    rows = list(correlated(rng, (5, 8, 10, 10)))
    kept, done = round_weights(tmp_path / "c.onnx", "x", rows)
    assert done == {"layers": 1, "compensated": 1, "rounded_to_nearest": {},
                    "calibration_inputs": 5}
    assert kept["w"].shape == w.shape and kept["w"].dtype == np.float32
    np.testing.assert_array_equal(int8_rounded(kept["w"]), kept["w"])
