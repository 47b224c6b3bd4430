"""Graph operations: crop by boxes, align by landmarks, the face mesh's crops, threshold on
scores, top-k.

Each takes an earlier step's result (and, for the crops, the full-size image) and returns
a :class:`StepOutput`: the JSON result plus, for crop, align and mesh_crop, the pixel crops that
a later model step (``input:``) runs on; mesh_crop also says where each crop lies in the image,
so the model step's answers are mapped back to the image's pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from argus.errors import Conflict
from argus.images import png_b64
from argus.tasks import ITEM_KEYS, face_geometry
from argus.tasks.faces.align import align_face

Array = np.ndarray[Any, Any]


@dataclass
class StepOutput:
    """What a step produced: its JSON ``result`` and, for crop/align, the crops themselves."""

    result: dict[str, Any]
    crops: list[Array] | None = None
    to_source: list[Array] | None = None
    """Per crop, the 2x3 map from its pixels to the image's (None: answers on the crops stay
    in crop pixels)."""


def main_items(result: Mapping[str, Any], step: str, op: str) -> tuple[str, list[dict[str, Any]]]:
    for key in ITEM_KEYS:
        value = result.get(key)
        if isinstance(value, list):
            return key, value
    raise Conflict(
        f"op {op} needs {', '.join(ITEM_KEYS)}, but step {step!r} answered "
        f"{', '.join(sorted(result)) or 'nothing'}"
    )


def threshold(result: Mapping[str, Any], step: str, min_score: float) -> StepOutput:
    key, items = main_items(result, step, "threshold")
    kept = [item for item in items if float(item.get("score", 0.0)) >= min_score]
    return StepOutput({**result, key: kept})


def top_k(result: Mapping[str, Any], step: str, k: int) -> StepOutput:
    key, items = main_items(result, step, "top_k")
    ranked = sorted(items, key=lambda item: -float(item.get("score", 0.0)))
    return StepOutput({**result, key: ranked[:k]})


def _png_list(crops: list[Array]) -> list[dict[str, Any]]:
    return [{"from": i, "png": png_b64(crop)} for i, crop in enumerate(crops)]


def align(
    rgb: Array, result: Mapping[str, Any], step: str, size: int, with_png: bool
) -> StepOutput:
    faces = result.get("faces")
    if not isinstance(faces, list):
        raise Conflict(f"op align needs faces with landmarks, but step {step!r} answered none")
    crops: list[Array] = []
    for i, face in enumerate(faces):
        landmarks = face.get("landmarks") if isinstance(face, Mapping) else None
        if landmarks is None:
            raise Conflict(f"op align: face {i} of step {step!r} has no landmarks")
        crops.append(align_face(rgb, landmarks, size))
    out: dict[str, Any] = {"count": len(crops), "size": size}
    if with_png:
        out["crops"] = _png_list(crops)
    return StepOutput(out, crops)


def crop(
    rgb: Array,
    result: Mapping[str, Any],
    step: str,
    margin: float,
    size: int | None,
    with_png: bool,
) -> StepOutput:
    key, items = main_items(result, step, "crop")
    height, width = rgb.shape[:2]
    crops: list[Array] = []
    boxes: list[list[int]] = []
    for i, item in enumerate(items):
        box = item.get("box")
        if not isinstance(box, list | tuple) or len(box) != 4:
            raise Conflict(f"op crop: item {i} of step {step!r} ({key}) has no box")
        if all(isinstance(p, list | tuple) and len(p) == 2 for p in box):
            # A quadrilateral (a text line's four corners): its upright bounding box.
            xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
            box = [min(xs), min(ys), max(xs), max(ys)]
        x1, y1, x2, y2 = (float(v) for v in box)
        dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
        left, top = max(0, round(x1 - dx)), max(0, round(y1 - dy))
        right, bottom = min(width, round(x2 + dx)), min(height, round(y2 + dy))
        if right - left < 1 or bottom - top < 1:
            continue  # a box wholly outside the image crops nothing
        piece = rgb[top:bottom, left:right].copy()
        if size is not None:
            piece = cv2.resize(piece, (size, size), interpolation=cv2.INTER_AREA)
        crops.append(piece)
        boxes.append([left, top, right, bottom])
    out: dict[str, Any] = {"count": len(crops), "boxes": boxes}
    if size is not None:
        out["size"] = size
    if with_png:
        out["crops"] = _png_list(crops)
    return StepOutput(out, crops)


def mesh_crop(
    rgb: Array, result: Mapping[str, Any], step: str, size: int, scale: float, with_png: bool
) -> StepOutput:
    """Per face (box + five landmarks), the square MediaPipe's face mesh expects: ``scale``
    times the box's longer side, eyes level, ``size`` x ``size``."""
    faces = result.get("faces")
    if not isinstance(faces, list):
        raise Conflict(f"op mesh_crop needs faces with landmarks, but step {step!r} answered none")
    crops: list[Array] = []
    maps: list[Array] = []
    for i, face in enumerate(faces):
        box = face.get("box") if isinstance(face, Mapping) else None
        landmarks = face.get("landmarks") if isinstance(face, Mapping) else None
        if box is None or landmarks is None or len(landmarks) < 2:
            raise Conflict(f"op mesh_crop: face {i} of step {step!r} has no box and landmarks")
        matrix = face_geometry.face_crop_matrix(box, landmarks, scale, size)
        crops.append(cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT))
        maps.append(face_geometry.invert(matrix))
    out: dict[str, Any] = {"count": len(crops), "size": size}
    if with_png:
        out["crops"] = _png_list(crops)
    return StepOutput(out, crops, maps)
