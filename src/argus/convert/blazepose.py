"""MediaPipe's BlazePose person detector (``pose_detection.tflite``, Apache-2.0) to an ONNX
``people`` package: read from the pinned mediapipe wheel, converted by :mod:`argus.convert.tflite`
and checked against OpenVINO's own reading of the ``.tflite`` (when OpenVINO is installed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from argus.convert import mediapipe, tflite
from argus.convert.mediapipe import POSE_DETECTION, WHEEL
from argus.convert.wheels import fetch_wheel

Progress = Callable[[str], None]
NAME = "blazepose-detector"


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write ``model.onnx`` into ``workdir``; return the manifest fields."""
    progress("downloading the mediapipe wheel")
    fetch_wheel(WHEEL, cache_dir)
    data = mediapipe.read_tflite(POSE_DETECTION, cache_dir)
    progress("converting pose_detection.tflite")
    model = tflite.convert(data, POSE_DETECTION.name)
    check = mediapipe.conversion_check(POSE_DETECTION, data, model)
    onnx.save(model, str(workdir / "model.onnx"))
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    return {
        "name": NAME,
        "task": "people",
        "description": (
            "MediaPipe BlazePose person detector (pose_detection, 224x224): a box, score and "
            "four body keypoints per person whose face is visible"
        ),
        "license": mediapipe.LICENSE,
        "source": {
            "kind": "wheel",
            "wheels": [mediapipe.source(POSE_DETECTION)],
            "upstream": "https://github.com/google-ai-edge/mediapipe",
            "converter": "argus.convert.blazepose",
            "conversion_check": check,
        },
        "model": "model.onnx",
        "inputs": [{"name": inputs[0], "datatype": "FP32", "shape": [-1, 224, 224, 3]}],
        "outputs": [
            {"name": outputs[0], "datatype": "FP32", "shape": [-1, 2254, 12]},
            {"name": outputs[1], "datatype": "FP32", "shape": [-1, 2254, 1]},
        ],
        "options": {"min_score": 0.5, "iou": 0.3, "max_torso": 5.0},
        "runtime": {"max_batch_size": 4, "max_wait_ms": 2.0},
    }
