"""MediaPipe's BlazePose (Apache-2.0) to one ONNX ``people`` package holding three networks: the
person detector (``pose_detection.tflite``), the 33-landmark pose model
(``pose_landmark_full.tflite``) and BlazeFace short range (``face_detection_short_range.tflite``,
the face check of :mod:`argus.tasks.people.face_check`), read from the pinned mediapipe wheel,
converted by :mod:`argus.convert.tflite` and each checked against OpenVINO's own reading of its
``.tflite`` (when OpenVINO is installed). The detector is then quantized to int8 and kept so
only when it finds the float one's people on held-out photos
(:mod:`argus.convert.blazepose_int8`; the package records which it holds, and why when float).

The landmark network also answers a 256x256 segmentation mask, a 64x64x39 heatmap and world
landmarks; the task reads only the landmarks and the pose presence flag, so the graph is cut to
those two outputs, which halves its time (the segmentation decoder is most of the work).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import onnx.utils

from argus.convert import blazepose_int8, mediapipe, tflite
from argus.convert.graph import ConversionError
from argus.convert.mediapipe import (
    FACE_DETECTION_SHORT,
    POSE_DETECTION,
    POSE_LANDMARK_FULL,
    WHEEL,
)
from argus.convert.wheels import fetch_wheel

Progress = Callable[[str], None]
NAME = "blazepose"
# The landmark network's outputs the task reads: 39 x (x, y, z, visibility, presence) in input
# pixels (33 body landmarks, then 6 MediaPipe uses to track between video frames) and the pose
# presence score.
LANDMARK_OUTPUTS = ("Identity", "Identity_1")


def landmark_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The converted landmark network cut to :data:`LANDMARK_OUTPUTS` (nodes that feed only
    the dropped outputs are gone, so no runtime computes them)."""
    names = [o.name for o in model.graph.output]
    if not set(LANDMARK_OUTPUTS) <= set(names):
        raise ConversionError(f"pose_landmark_full has outputs {names}, not {LANDMARK_OUTPUTS}")
    extractor = onnx.utils.Extractor(model)
    cut = extractor.extract_model([model.graph.input[0].name], list(LANDMARK_OUTPUTS))
    cut.ir_version, cut.producer_name = model.ir_version, model.producer_name
    del cut.opset_import[:]
    cut.opset_import.extend(model.opset_import)
    onnx.checker.check_model(cut)
    return cut


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write ``detector.onnx`` (int8 when it holds), ``landmarks.onnx`` and ``face.onnx`` into
    ``workdir``; return the manifest fields."""
    fields = build_float(workdir, cache_dir, progress)
    quantized = blazepose_int8.make_int8(workdir, fields, progress)
    fields["source"]["detector_quantization"] = quantized
    if quantized["detector"] == "int8":
        fields["description"] += "; the detector in int8, checked against the float one at pull"
    return fields


def build_float(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None
                ) -> dict[str, Any]:
    """The three networks converted, float: ``detector.onnx``, ``landmarks.onnx`` and
    ``face.onnx`` in ``workdir``; the manifest fields."""
    progress("downloading the mediapipe wheel")
    fetch_wheel(WHEEL, cache_dir)
    checks = {}
    for member, filename in ((POSE_DETECTION, "detector.onnx"),
                             (POSE_LANDMARK_FULL, "landmarks.onnx"),
                             (FACE_DETECTION_SHORT, "face.onnx")):
        data = mediapipe.read_tflite(member, cache_dir)
        progress(f"converting {member.name}.tflite")
        model = tflite.convert(data, member.name, size_step=member.size_step)
        if member is POSE_LANDMARK_FULL:
            model = landmark_graph(model)
        progress(f"checking {member.name} against OpenVINO")
        checks[member.name] = mediapipe.conversion_check(member, data, model)
        onnx.save(model, str(workdir / filename))
    return {
        "name": NAME,
        "task": "people",
        "description": (
            "MediaPipe BlazePose: the person detector (pose_detection, 224x224) finds people "
            "whose face is visible, searched over the whole photo and overlapping tiles; the "
            "full pose landmark model (pose_landmark_full, 256x256) gives each person 33 body "
            "landmarks with visibility and a presence score; BlazeFace short range (128x128) "
            "checks that a face is where each skeleton puts one"
        ),
        "license": mediapipe.LICENSE,
        "source": {
            "kind": "wheel",
            "wheels": [mediapipe.source(m)
                       for m in (POSE_DETECTION, POSE_LANDMARK_FULL, FACE_DETECTION_SHORT)],
            "upstream": "https://github.com/google-ai-edge/mediapipe",
            "converter": "argus.convert.blazepose",
            "conversion_check": checks,
        },
        "models": {"detector": "detector.onnx", "landmarks": "landmarks.onnx",
                   "face": "face.onnx"},
        "options": {"min_score": 0.5, "iou": 0.3, "max_torso": 5.0, "min_presence": 0.5,
                    "min_face_score": 0.5},
        "runtime": {"max_batch_size": 1, "max_wait_ms": 0.0},
    }
