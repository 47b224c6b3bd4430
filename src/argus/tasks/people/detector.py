"""BlazePose's person detector (MediaPipe's ``pose_detection``): a face-ish box, a score and
four keypoints per person, from a view of the image.

MediaPipe feeds the network the image letterboxed into 224x224 (RGB in -1..1, NHWC). It is
fully convolutional, and the package's conversion takes any height and width that are
multiples of 32 (:data:`STEP`), so a view can be the image at any scale, whole. For each
anchor it answers 12 numbers (a box centre and size, then four keypoints, all offsets in input
pixels from the anchor's centre) and one score logit. The anchors are the grid centres of
MediaPipe's SSD anchor options for this model: strides 8, 16, 32, 32, 32 with two anchors per
cell each (the three stride-32 layers share one grid, 6 per cell): at 224x224,
28²·2 + 14²·2 + 7²·6 = 2,254.
Candidates whose sigmoid score passes ``min_score`` are merged by weighted non-max suppression
(each group of boxes overlapping the best by more than ``iou`` becomes their score-weighted
mean), as MediaPipe does.

The box the network gives is around the face; the body's extent comes from the keypoints:
mid-hip, full-body size point (the mid-hip is the centre and its distance to this point the
radius of a circle holding the whole person), mid-shoulder and upper-body size point.
"""

from __future__ import annotations

from functools import cache

import numpy as np

INPUT_SIZE = 224
STEP = 32  # the detector's input sides are multiples of its coarsest stride
# (stride, anchors per cell) of each grid; consecutive layers of one stride share a grid.
ANCHOR_GRIDS = ((8, 2), (16, 2), (32, 6))
KEYPOINT_NAMES = ("mid_hip", "full_body", "mid_shoulder", "upper_body")


@cache
def anchors(height: int = INPUT_SIZE, width: int = INPUT_SIZE) -> np.ndarray:
    """``[N, 2]`` anchor centres in input pixels, in the order of the model's outputs for an
    input of ``height`` x ``width``: each grid row by row, each cell's anchors together."""
    centres = []
    for stride, per_cell in ANCHOR_GRIDS:
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float64)
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


def plain_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices of the boxes kept, best first: each drops the others overlapping it by more
    than ``iou``."""
    order = list(np.argsort(-scores, kind="stable"))
    kept: list[int] = []
    while order:
        best = int(order.pop(0))
        kept.append(best)
        if order:
            overlap = iou_with(boxes[best], boxes[order])
            order = [i for i, o in zip(order, overlap, strict=True) if o <= iou]
    return kept


def decode(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    min_score: float,
    iou: float,
    size: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE),
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """One input's ``[N, 12]`` and ``[N, 1]`` outputs (its ``size``: height, width) → (face box
    xyxy, keypoints [4, 2], score) per detection, in input pixels, best first."""
    centre = anchors(*size)
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
