"""ONNX Runtime's static int8 quantization as ``optimize`` drives it, on a small real
convolutional graph: the weights it keeps are the compensated ones ``rounding`` made, the corrected
biases cancel the shift int8 weights cause on the calibration inputs, and a last Gemm's output
stays float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from argus.optimize.quantize import correct_biases, int8_rounded, quantize_int8
from argus.optimize.rounding import round_weights


def two_convs(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """x (n, 4, 6, 6) → 1x1 conv to 8 channels → 1x1 depthwise conv (8 groups) → y."""
    rng = np.random.default_rng(seed)
    tensors = {
        "w1": rng.normal(0, 0.5, (8, 4, 1, 1)).astype(np.float32),
        "b1": rng.normal(0, 0.1, 8).astype(np.float32),
        "w2": rng.normal(0, 0.5, (8, 1, 1, 1)).astype(np.float32),
        "b2": rng.normal(0, 0.1, 8).astype(np.float32),
    }
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="pointwise"),
         helper.make_node("Conv", ["h", "w2", "b2"], ["y"], name="depthwise", group=8)],
        "two-convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8, 6, 6])],
        [numpy_helper.from_array(v, k) for k, v in tensors.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return tensors


def run(path: Path, x: np.ndarray, output: str = "y") -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output], {"x": x})[0])


def test_onnx_runtime_keeps_the_compensated_int8_weights(tmp_path: Path) -> None:
    tensors = two_convs(tmp_path / "float.onnx")
    rows = list(np.random.default_rng(1).uniform(0, 2, (16, 4, 6, 6)).astype(np.float32))
    done = quantize_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx", rows, tmp_path)
    assert done["bias_correction"]["convolutions"] == 2
    assert done["weight_rounding"]["compensated"] == 2
    # The weights the int8 graph keeps are the compensated ones, not the nearest steps.
    expected, _ = round_weights(tmp_path / "float.onnx", "x", rows)
    assert not np.allclose(expected["w1"], int8_rounded(tensors["w1"]))
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    checked = 0
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and inits.get(node.input[0]) is not None \
                and inits[node.input[0]].dtype == np.int8:
            kept = inits[node.input[0]].astype(np.float32) * inits[node.input[1]].reshape(
                -1, 1, 1, 1)
            want = next(expected[k] for k in ("w1", "w2") if expected[k].shape == kept.shape)
            np.testing.assert_allclose(kept, want, rtol=1e-6, atol=1e-7)
            checked += 1
    assert checked == 2


def test_every_calibration_input_sets_the_ranges(tmp_path: Path) -> None:
    """32 inputs (4 runs of 8), the largest in the first run: its range is the input's. ONNX
    Runtime's CalibMaxIntermediateOutputs would have dropped full sets of runs (here all four:
    "No data is collected")."""
    two_convs(tmp_path / "float.onnx")
    rows = list(np.random.default_rng(4).uniform(0, 2, (32, 4, 6, 6)).astype(np.float32))
    rows[0] = rows[0] * 5
    quantize_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx", rows, tmp_path)
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    quantize_x = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert float(inits[quantize_x.input[1]]) == pytest.approx(float(rows[0].max()) / 255, rel=1e-4)


def rounded(src: Path, dest: Path, tensors: dict[str, np.ndarray]) -> Path:
    """``src`` with the weights named in ``tensors`` as int8 keeps them, and ``h`` (the first
    conv's output) shown."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.name in tensors:
            init.CopyFrom(numpy_helper.from_array(int8_rounded(tensors[init.name]), init.name))
    model.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    onnx.save(model, str(dest))
    return dest


def channel_means(path: Path, x: np.ndarray, output: str) -> np.ndarray:
    return run(path, x, output).mean(axis=(0, 2, 3))


def test_corrected_biases_cancel_the_int8_weights_shift(tmp_path: Path) -> None:
    tensors = two_convs(tmp_path / "float.onnx")
    x = np.random.default_rng(2).uniform(0, 2, (16, 4, 6, 6)).astype(np.float32)
    done = correct_biases(tmp_path / "float.onnx", tmp_path / "corrected.onnx", "x", list(x))
    assert done["convolutions"] == 2 and done["largest_shift"] > 0
    exact = rounded(tmp_path / "float.onnx", tmp_path / "exact.onnx", {})  # weights unchanged
    tensors = {k: v for k, v in tensors.items() if k.startswith("w")}
    plain = rounded(tmp_path / "float.onnx", tmp_path / "plain.onnx", tensors)
    fixed = rounded(tmp_path / "corrected.onnx", tmp_path / "fixed.onnx", tensors)
    for output in ("h", "y"):
        want = channel_means(exact, x, output)
        before = np.abs(channel_means(plain, x, output) - want).max()
        after = np.abs(channel_means(fixed, x, output) - want).max()
        assert before > 1e-3  # int8 weights do move the means
        # 1x1 kernels: the first layer's means come back exactly; the second sees the first's
        # rounded outputs, so its correction holds to the first order.
        assert after < (2e-5 if output == "h" else before / 5), (output, before, after)


def test_logits_stay_float_out_of_the_last_gemm(tmp_path: Path) -> None:
    """uint8 logits would swap near-tied classes by rounding alone; the Gemm's weights are
    still int8."""
    rng = np.random.default_rng(3)
    tensors = {"w": rng.normal(0, 0.5, (8, 4, 1, 1)).astype(np.float32),
               "fc": rng.normal(0, 0.5, (5, 8)).astype(np.float32),
               "fc_b": rng.normal(0, 0.1, 5).astype(np.float32)}
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["h"], name="conv"),
         helper.make_node("GlobalAveragePool", ["h"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Gemm", ["f", "fc", "fc_b"], ["y"], name="fc", transB=1)],
        "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(v, k) for k, v in tensors.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "float.onnx"))
    rows = list(rng.uniform(0, 2, (16, 4, 6, 6)).astype(np.float32))
    done = quantize_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx", rows, tmp_path)
    assert done["weight_rounding"]["compensated"] == 2
    nodes = onnx.load(str(tmp_path / "int8.onnx")).graph.node
    gemm = next(n for n in nodes if n.op_type == "Gemm")
    assert list(gemm.output) == ["y"]
    assert not any("y" in n.input for n in nodes if n.op_type == "QuantizeLinear")
    assert any(n.op_type == "DequantizeLinear" and n.output[0] == gemm.input[1] for n in nodes)
    x = np.stack(rows[:4])
    want, got = run(tmp_path / "float.onnx", x), run(tmp_path / "int8.onnx", x)
    np.testing.assert_allclose(got, want, atol=0.05)
