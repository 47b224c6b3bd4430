"""MediaPipe's Apache-2.0 person, face and iris models, from the pinned ``mediapipe`` wheel.

``mediapipe==0.10.21`` is the last release that ships these ``.tflite`` files inside the wheel
(0.10.30 dropped them). The wheel is fetched for a named platform and Python so the same file
(and sha256) comes down anywhere, and is never installed: only the members below are read, then
converted to ONNX by :mod:`argus.convert.tflite`.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from PIL import Image

from argus.convert import tflite
from argus.convert.efficientnet import synthetic_photos
from argus.convert.graph import ConversionError
from argus.convert.wheels import PinnedWheel, fetch_wheel, read_member

WHEEL = PinnedWheel(
    "mediapipe",
    "0.10.21",
    "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    platform="manylinux_2_28_x86_64",
    python_version="3.11",
)
LICENSE = "Apache-2.0"


@dataclass(frozen=True)
class Member:
    """One ``.tflite`` file in the wheel, pinned by its own sha256 too."""

    name: str
    path: str
    sha256: str
    # The pixel range MediaPipe feeds the model (RGB, NHWC float32).
    input_range: tuple[float, float] = (0.0, 1.0)
    # A fully convolutional detector converted to take any input size that is a multiple of
    # this (see tflite.convert); None keeps the .tflite's size.
    size_step: int | None = None


POSE_DETECTION = Member(
    "pose_detection",
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    (-1.0, 1.0),
    size_step=32,  # its coarsest grid has a stride of 32
)
POSE_LANDMARK_FULL = Member(
    "pose_landmark_full",
    "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
)
FACE_LANDMARK = Member(
    "face_landmark",
    "mediapipe/modules/face_landmark/face_landmark.tflite",
    "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
)
IRIS_LANDMARK = Member(
    "iris_landmark",
    "mediapipe/modules/iris_landmark/iris_landmark.tflite",
    "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
)
# BlazeFace: short range for faces filling much of a crop, full range (sparse weights) for
# faces up to ~5 m away in a whole photo.
FACE_DETECTION_SHORT = Member(
    "face_detection_short_range",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    (-1.0, 1.0),
)
FACE_DETECTION_FULL = Member(
    "face_detection_full_range_sparse",
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    (-1.0, 1.0),
)
MEMBERS = (
    POSE_DETECTION,
    POSE_LANDMARK_FULL,
    FACE_LANDMARK,
    IRIS_LANDMARK,
    FACE_DETECTION_SHORT,
    FACE_DETECTION_FULL,
)


def read_tflite(member: Member, cache_dir: Path) -> bytes:
    """The member's bytes from the pinned wheel, refused unless its sha256 is the pinned one."""
    data = read_member(fetch_wheel(WHEEL, cache_dir), member.path)
    actual = hashlib.sha256(data).hexdigest()
    if actual != member.sha256:
        raise ConversionError(
            f"{member.path} has sha256 {actual}, expected the pinned {member.sha256}"
        )
    return data


def convert_member(member: Member, cache_dir: Path) -> onnx.ModelProto:
    return tflite.convert(read_tflite(member, cache_dir), member.name, size_step=member.size_step)


def source(member: Member) -> dict[str, str]:
    """What a model package records about where its weights came from."""
    return {**WHEEL.to_source(), "member": member.path, "member_sha256": member.sha256}


# The converted graph may differ from the reference by this much, relative to the size of the
# output where that exceeds 1 (segmentation logits reach ~1.7e3; LiteRT's own kernels differ
# there by ~0.5).
TOLERANCE = 2e-3


def model_inputs(member: Member, images: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 images resized to the model's (height, width), in its pixel range, NHWC."""
    lo, hi = member.input_range
    batch = [
        np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.BILINEAR))
        for img in images
    ]
    return (np.stack(batch).astype(np.float32) / 255.0 * (hi - lo) + lo).astype(np.float32)


def conversion_check(member: Member, data: bytes, model: onnx.ModelProto) -> dict[str, Any]:
    """Compare the converted model on ONNX Runtime with OpenVINO reading the ``.tflite`` itself,
    on generated images (a runtime install has no photos); raises when they differ by more than
    :data:`TOLERANCE`. Without OpenVINO: ``{"checked": False, ...}`` saying so."""
    try:
        import openvino as ov
    except ModuleNotFoundError:
        return {"checked": False, "why": "OpenVINO was not installed at conversion"}
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{member.name}.tflite"
        path.write_bytes(data)
        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    images = synthetic_photos(4)
    # The .tflite's own input size (a dynamic-size conversion is compared at that size).
    _n, height, width, _c = (int(d) for d in compiled.inputs[0].get_shape())
    x = model_inputs(member, images, (height, width))
    ours = dict(zip([o.name for o in session.get_outputs()], session.run(None, {inp.name: x}),
                    strict=True))
    # A converted model may keep only some of the .tflite's outputs (the pose landmark package
    # drops segmentation and heatmap); those it keeps are compared, and it must keep one.
    ports = [
        (port, next((n for n in port.get_names() if n in ours), None)) for port in compiled.outputs
    ]
    if not any(name for _, name in ports):
        names = [sorted(port.get_names()) for port, _ in ports]
        raise ConversionError(f"{member.name}: OpenVINO names outputs {names}, none of ours")
    worst = 0.0
    for i in range(len(images)):
        theirs = compiled(x[i : i + 1])
        for port, name in ports:
            if name is None:
                continue
            expected = theirs[port]
            scale = max(1.0, float(np.abs(expected).max()))
            worst = max(worst, float(np.abs(ours[name][i : i + 1] - expected).max()) / scale)
    if worst > TOLERANCE:
        raise ConversionError(
            f"{member.name}: the converted model differs from OpenVINO's reading of the .tflite "
            f"by {worst:.2e} (relative), over the {TOLERANCE:g} allowed"
        )
    return {
        "checked": True,
        "reference": f"OpenVINO {ov.__version__} reading the .tflite",
        "images": f"{len(images)} generated (efficientnet.synthetic_photos)",
        "max_rel_diff": float(f"{worst:.3g}"),
        "tolerance": TOLERANCE,
    }
