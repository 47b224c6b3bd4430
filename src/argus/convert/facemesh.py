"""MediaPipe's face mesh (``face_landmark.tflite``: 468 3-D points) and iris
(``iris_landmark.tflite``: 71 eye-contour + 5 iris points), Apache-2.0, to one ONNX
``face-attributes`` package: both read from the pinned mediapipe wheel, converted by
:mod:`argus.convert.tflite` and each checked against OpenVINO's own reading of the ``.tflite``
(when OpenVINO is installed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from argus.convert import mediapipe, tflite
from argus.convert.mediapipe import FACE_LANDMARK, IRIS_LANDMARK, WHEEL
from argus.convert.wheels import fetch_wheel

Progress = Callable[[str], None]
NAME = "face-mesh"
# The package's two networks, by the role the task gives them.
NETWORKS = {"landmark": FACE_LANDMARK, "iris": IRIS_LANDMARK}


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write ``landmark.onnx`` and ``iris.onnx`` into ``workdir``; return the manifest fields."""
    progress("downloading the mediapipe wheel")
    fetch_wheel(WHEEL, cache_dir)
    checks: dict[str, Any] = {}
    specs: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for role, member in NETWORKS.items():
        data = mediapipe.read_tflite(member, cache_dir)
        progress(f"converting {member.name}.tflite")
        model = tflite.convert(data, member.name)
        checks[role] = mediapipe.conversion_check(member, data, model)
        onnx.save(model, str(workdir / f"{role}.onnx"))
        specs[role] = (_specs(model.graph.input), _specs(model.graph.output))
    return {
        "name": NAME,
        "task": "face-attributes",
        "description": (
            "MediaPipe face mesh (face_landmark, 192x192: 468 3-D points) and iris "
            "(iris_landmark, 64x64 per eye): smile, mouth, eyes, head pose and gaze per face"
        ),
        "license": mediapipe.LICENSE,
        "source": {
            "kind": "wheel",
            "wheels": [mediapipe.source(member) for member in NETWORKS.values()],
            "upstream": "https://github.com/google-ai-edge/mediapipe",
            "converter": "argus.convert.facemesh",
            "conversion_check": checks,
        },
        "models": {role: f"{role}.onnx" for role in NETWORKS},
        # The face mesh network's own tensors: what a KServe client sends to this package.
        "inputs": specs["landmark"][0],
        "outputs": specs["landmark"][1],
        "runtime": {"max_batch_size": 8, "max_wait_ms": 2.0},
    }


def _specs(values: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": v.name,
            "datatype": "FP32",
            "shape": [d.dim_value if d.dim_value else -1 for d in v.type.tensor_type.shape.dim],
        }
        for v in values
    ]
