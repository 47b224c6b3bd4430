"""Weights fitted layer after layer to the int8 model's own inputs: the bias left unrounded is
the best one for the rounded weights, a layer fitted to shifted inputs undoes the shift, and on
a small real network quantized by ONNX Runtime every layer's error falls, the fused int8 model
computes what the fit wrote (weights, scales, int32 biases) and answers closer to float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from argus.optimize.fitting import LayerFit, adaround, fit_in_sequence
from argus.optimize.quantize import int8_rounded, quantize_int8
from argus.optimize.rounding import DAMP, compensated, nearest


def test_an_exact_last_column_is_the_best_bias_for_the_rounded_weights() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.5, 1, (200, 6)), np.ones((200, 1))], axis=1)
    x[:, 1] += x[:, 0]  # correlated inputs, so the rounding errors do move the bias
    h = (x.T @ x)[None]
    w = rng.normal(0, 0.4, (5, 7))
    q = compensated(w, h, exact_last=True)
    on_grid = q[:, :6].astype(np.float32)
    np.testing.assert_array_equal(int8_rounded(on_grid), on_grid)
    # The damped H the rounding used (weights' diagonal only), and the bias that minimises
    # (q - w)^T H (q - w) with the weights fixed at their rounded values.
    damped = h[0].copy()
    idx = np.arange(6)
    damped[idx, idx] += DAMP * damped[idx, idx].mean() + 1e-12
    best = w[:, 6] - (q[:, :6] - w[:, :6]) @ damped[6, :6] / damped[6, 6]
    np.testing.assert_allclose(q[:, 6], best, rtol=1e-9, atol=1e-12)
    assert not np.allclose(q[:, 6], w[:, 6])


def test_adaround_chooses_each_rounding_for_the_layers_error() -> None:
    rng = np.random.default_rng(2)
    common = rng.normal(0, 1, (2000, 1))
    x = np.concatenate([common + 0.5 * rng.normal(0, 1, (2000, 27)) + 0.3,
                        np.ones((2000, 1))], axis=1)
    h = (x.T @ x)[None]
    w = np.concatenate([rng.normal(0, 0.05, (32, 27)), rng.normal(0, 0.1, (32, 1))], axis=1)

    def error(q: np.ndarray) -> float:
        return float(np.einsum("oi,ij,oj->", q - w, h[0], q - w))

    q = adaround(w, h, exact_last=True)
    on_grid = q[:, :27].astype(np.float32)
    np.testing.assert_array_equal(int8_rounded(on_grid), on_grid)
    steps = np.abs(q[:, :27] - w[:, :27]) / (np.abs(w[:, :27]).max(axis=1, keepdims=True) / 127)
    assert steps.max() < 1 + 1e-6  # rounded down or up, never further
    near = np.concatenate([nearest(w[:, :27]), w[:, 27:]], axis=1)
    assert error(q) < 0.5 * error(near), (error(q), error(near))


def test_a_layer_fitted_to_shifted_inputs_undoes_the_shift() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.3, (6, 4, 1, 1)).astype(np.float32)
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")
    x = rng.uniform(0, 2, (8, 4, 5, 5)).astype(np.float32)
    y = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None]
    given = x + np.array([0.3, -0.2, 0.0, 0.1], np.float32)[None, :, None, None]
    fit = LayerFit(node, w, b)
    fit.add(given, y)
    before = fit.error(w.reshape(6, -1).astype(np.float64), b.astype(np.float64))
    new_w, new_b = fit.fitted()
    after = fit.error(new_w.reshape(6, -1).astype(np.float64), new_b)
    # The statistics tell the error a direct computation finds.
    direct = np.einsum("oc,nchw->nohw", new_w[:, :, 0, 0], given) + new_b[None, :, None, None]
    np.testing.assert_allclose(after, np.square(direct - y).sum() / np.square(y).sum(),
                               rtol=1e-4)
    assert after < before / 20, (before, after)


def small_net(path: Path) -> None:
    """3x3 conv (stride 2) → ReLU6 → 3x3 depthwise → ReLU6 → 1x1 conv → pool → Gemm."""
    rng = np.random.default_rng(0)
    t = {"w1": rng.normal(0, 0.3, (16, 3, 3, 3)), "b1": rng.normal(0, 0.1, 16),
         "w2": rng.normal(0, 0.5, (16, 1, 3, 3)), "b2": rng.normal(0, 0.1, 16),
         "w3": rng.normal(0, 0.3, (8, 16, 1, 1)), "b3": rng.normal(0, 0.1, 8),
         "fc": rng.normal(0, 0.5, (5, 8)), "fcb": rng.normal(0, 0.1, 5),
         "lo": np.array(0.0), "hi": np.array(6.0)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="c1", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["ar"], name="r1"),
        helper.make_node("Conv", ["ar", "w2", "b2"], ["d"], name="c2", pads=[1, 1, 1, 1],
                         group=16),
        helper.make_node("Clip", ["d", "lo", "hi"], ["dr"], name="r2"),
        helper.make_node("Conv", ["dr", "w3", "b3"], ["c"], name="c3"),
        helper.make_node("GlobalAveragePool", ["c"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in t.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def inputs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 1, (n, 1, 16, 16))
    return (common + 0.3 * rng.normal(0, 1, (n, 3, 16, 16)) + 0.5).astype(np.float32)


def run(path: Path, x: np.ndarray, fused: bool = True) -> np.ndarray:
    options = ort.SessionOptions()
    if not fused:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["y"], {"x": x})[0])


def test_fitted_in_sequence_on_a_small_quantized_network(tmp_path: Path) -> None:
    small_net(tmp_path / "float.onnx")
    rows = inputs(32, 1)
    quantize_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx", list(rows), tmp_path)
    done = fit_in_sequence(tmp_path / "prepared.onnx", tmp_path / "int8.onnx",
                           tmp_path / "fitted.onnx", "x", list(rows))
    layers = done["layers"]
    assert list(layers) == ["c1", "c2", "c3", "fc"]
    # 32 input vectors for the Gemm's 9 weights and bias: too few to fit, left as it was.
    assert layers.pop("fc") == "32 input vectors for 9 weights: left as it was"
    for name, figures in layers.items():
        assert figures["error_after"] <= figures["error_before"], name

    # ONNX Runtime fuses the fitted model as it did the first (QLinearConv reads the int32
    # bias at input scale x weight scale): fused and unfused compute the same.
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "fused.onnx")
    ort.InferenceSession(str(tmp_path / "fitted.onnx"), options,
                         providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "fused.onnx")).graph.node]
    assert ops.count("QLinearConv") == 3 and "Conv" not in ops
    np.testing.assert_allclose(run(tmp_path / "fitted.onnx", rows),
                               run(tmp_path / "fitted.onnx", rows, fused=False), atol=1e-5)

    want = run(tmp_path / "float.onnx", rows)
    before = np.abs(run(tmp_path / "int8.onnx", rows) - want).mean()
    after = np.abs(run(tmp_path / "fitted.onnx", rows) - want).mean()
    assert after < 0.95 * before, (before, after)
