"""The blazepose package's landmark graph, cut to the outputs the task reads, against LiteRT
running the whole .tflite on real photos."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from argus.convert import blazepose
from argus.convert.graph import ConversionError
from tests.convert.test_tflite import model_input


def test_the_cut_landmark_graph_matches_litert(
    converted: dict[str, onnx.ModelProto],
    mediapipe_tflite: dict[str, bytes],
    photos: dict[str, bytes],
) -> None:
    litert: Any = pytest.importorskip("ai_edge_litert.interpreter")
    name = "pose_landmark_full"
    cut = blazepose.landmark_graph(converted[name])
    assert [o.name for o in cut.graph.output] == list(blazepose.LANDMARK_OUTPUTS)
    # The segmentation decoder and heatmap are gone, not just unlisted.
    assert len(cut.graph.node) < 0.8 * len(converted[name].graph.node)
    interpreter = litert.Interpreter(model_content=mediapipe_tflite[name], num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    for key in ("astronaut", "chelsea"):
        x = model_input(photos, key, name, (256, 256))
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        got = session.run(list(blazepose.LANDMARK_OUTPUTS), {inp["name"]: x})
        for out, value in zip(blazepose.LANDMARK_OUTPUTS, got, strict=True):
            expected = interpreter.get_tensor(outputs[out])
            scale = max(1.0, float(np.abs(expected).max()))
            assert float(np.abs(value - expected).max()) <= 2e-3 * scale, (key, out)


def test_a_graph_without_those_outputs_is_refused(
    converted: dict[str, onnx.ModelProto],
) -> None:
    with pytest.raises(ConversionError, match="not"):
        blazepose.landmark_graph(converted["iris_landmark"])
