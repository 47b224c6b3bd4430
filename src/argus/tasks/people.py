"""People: MediaPipe's BlazePose person detector (``pose_detection``), a box, a score and four
keypoints per person.

The network sees the image letterboxed into 224x224 (RGB in -1..1, NHWC) and answers, for each
of 2,254 fixed anchors, 12 numbers (a box centre and size, then four keypoints, all offsets in
input pixels from the anchor's centre) and one score logit. The anchors are the grid centres of
MediaPipe's SSD anchor options for this model: strides 8, 16, 32, 32, 32 with two anchors per
cell each (the three stride-32 layers share one 7x7 grid, 6 per cell), so 28²·2 + 14²·2 + 7²·6.
Candidates whose sigmoid score passes ``min_score`` are merged by weighted non-max suppression
(each group of boxes overlapping the best by more than ``iou`` becomes their score-weighted
mean), as MediaPipe does.

The box the network gives is around the face; the body's extent comes from the keypoints: the
mid-hip point is the centre and its distance to the full-body size point the radius of a square
holding the whole person (clipped to the image). The keypoints are mid-hip, full-body size
point, mid-shoulder and upper-body size point.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from argus.engines import RuntimeChoice
from argus.images import DecodedImage
from argus.manifest import ModelPackage, TaskFields
from argus.tasks.base import TaskModel
from argus.tasks.letterbox import Letterbox, letterbox_geometry

INPUT_SIZE = 224
# (stride, anchors per cell) of each grid; consecutive layers of one stride share a grid.
ANCHOR_GRIDS = ((8, 2), (16, 2), (32, 6))
KEYPOINT_NAMES = ("mid_hip", "full_body", "mid_shoulder", "upper_body")


@cache
def anchors(size: int = INPUT_SIZE) -> np.ndarray:
    """``[N, 2]`` anchor centres in input pixels, in the order of the model's outputs."""
    centres = []
    for stride, per_cell in ANCHOR_GRIDS:
        cells = -(-size // stride)
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float64)
        grid = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres)


def iou_with(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes``."""
    iw = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    ih = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Best first: each kept (box, keypoints, score) is the score-weighted mean of the
    candidates overlapping the best remaining one by more than ``iou``; its score the best's."""
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        best = order[0]
        group = order[iou_with(boxes[best], boxes[order]) > iou]
        group = np.union1d(group, [best]) if best not in group else group
        weights = scores[group] / scores[group].sum()
        kept.append(
            (
                (boxes[group] * weights[:, None]).sum(axis=0),
                (keypoints[group] * weights[:, None, None]).sum(axis=0),
                float(scores[best]),
            )
        )
        order = np.setdiff1d(order, group, assume_unique=True)
        order = order[np.argsort(-scores[order], kind="stable")]
    return kept


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float, iou: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """One image's ``[2254, 12]`` and ``[2254, 1]`` outputs → (face box xyxy, keypoints [4, 2],
    score) per detection, in input pixels, best first."""
    centre = anchors()
    logits = np.asarray(raw_scores, dtype=np.float64).reshape(-1).clip(-100, 100)
    scores = 1.0 / (1.0 + np.exp(-logits))
    chosen = np.flatnonzero(scores >= min_score)
    if not chosen.size:
        return []
    raw = np.asarray(raw_boxes, dtype=np.float64)[chosen]
    anchor = centre[chosen]
    cx, cy = raw[:, 0] + anchor[:, 0], raw[:, 1] + anchor[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anchor[:, None, :]
    return weighted_nms(boxes, keypoints, scores[chosen], iou)


def plausible(face: np.ndarray, keypoints: np.ndarray, max_torso: float) -> bool:
    """Whether the hip-to-shoulder distance is at most ``max_torso`` face-box widths."""
    face_size = max(float(face[2] - face[0]), float(face[3] - face[1]), 1e-6)
    torso = float(np.hypot(*(keypoints[2] - keypoints[0])))
    return torso <= max_torso * face_size


def to_image(points: np.ndarray, geo: Letterbox, height: int, width: int) -> np.ndarray:
    """``[..., 2]`` points in input pixels → image pixels (not clipped)."""
    out = points.astype(np.float64, copy=True)
    out[..., 0] = (out[..., 0] - geo.left) * width / geo.new_width
    out[..., 1] = (out[..., 1] - geo.top) * height / geo.new_height
    return out


def body_box(keypoints: np.ndarray, height: int, width: int) -> list[float]:
    """The square around the mid-hip point reaching the full-body size point, clipped."""
    centre, reach = keypoints[0], keypoints[1]
    radius = float(np.hypot(*(reach - centre)))
    x1, y1 = max(0.0, centre[0] - radius), max(0.0, centre[1] - radius)
    x2, y2 = min(float(width), centre[0] + radius), min(float(height), centre[1] + radius)
    return [round(float(v), 2) for v in (x1, y1, x2, y2)]


class PeopleOptions(BaseModel):
    """The ``options`` block of a people package."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    """Smallest person score kept (MediaPipe's own threshold)."""
    iou: float = Field(default=0.3, ge=0.0, le=1.0)
    """Weighted NMS: candidates overlapping the best by more than this are merged into it."""
    max_torso: float = Field(default=5.0, gt=0.0)
    """Longest mid-hip to mid-shoulder distance kept, in face-box widths. A person's is about 3;
    the detector's confident answers on animals (scikit-image's chelsea: 8.5) put the hip far
    away, so they are dropped."""


class PeopleFields(TaskFields):
    options: PeopleOptions = PeopleOptions()


class PeopleModel(TaskModel):
    task = "people"
    answer_kind = "people"
    item_fields = frozenset({"label", "score", "box", "face_box", "keypoints"})
    fields = PeopleFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.options = package.fields_as(PeopleFields).options
        self.ort = self.session(package.onnx_files()["model"])
        self.input_name = self.ort.get_inputs()[0].name
        self.outputs = [o.name for o in self.ort.get_outputs()]

    @property
    def min_side(self) -> int | None:
        return INPUT_SIZE

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> np.ndarray:
        """The image letterboxed into 224x224, RGB in -1..1 (padding 0), NHWC row."""
        rgb = image.rgb
        h, w = rgb.shape[:2]
        geo = letterbox_geometry(h, w, INPUT_SIZE, INPUT_SIZE)
        resized = cv2.resize(rgb, (geo.new_width, geo.new_height), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
        canvas[geo.top : geo.top + geo.new_height, geo.left : geo.left + geo.new_width] = (
            resized.astype(np.float32) / 127.5 - 1.0
        )
        return canvas

    def infer(self, prepared: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        boxes, scores = self.ort.run(self.outputs, {self.input_name: np.stack(prepared)})
        return [(boxes[i], scores[i]) for i in range(len(prepared))]

    def finish(
        self, raw: tuple[np.ndarray, np.ndarray], image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        min_score = float(params.get("min_score", self.options.min_score))
        h, w = image.rgb.shape[:2]
        geo = letterbox_geometry(h, w, INPUT_SIZE, INPUT_SIZE)
        # Answers are in the original image's pixels even when the JPEG was decoded smaller.
        sx, sy = image.width / w, image.height / h
        people = []
        for face, keypoints, score in decode(raw[0], raw[1], min_score, self.options.iou):
            if not plausible(face, keypoints, self.options.max_torso):
                continue
            points = to_image(keypoints, geo, h, w) * (sx, sy)
            corners = to_image(face.reshape(2, 2), geo, h, w) * (sx, sy)
            people.append(
                {
                    "label": "person",
                    "score": round(score, 6),
                    "box": body_box(points, image.height, image.width),
                    "face_box": [round(float(v), 2) for v in corners.ravel()],
                    "keypoints": {
                        name: [round(float(x), 2), round(float(y), 2)]
                        for name, (x, y) in zip(KEYPOINT_NAMES, points, strict=True)
                    },
                }
            )
        return {"people": people}
