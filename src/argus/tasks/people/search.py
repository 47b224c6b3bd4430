"""Where the detector looks: the whole image, then overlapping tiles, until the smallest face it
finds is as small as the face the package promises to find.

The detector sees a window squeezed into 224x224 and finds people whose face is at least about
``tile_face`` input pixels wide (measured on scikit-image's astronaut and the collages of the
tests). On a whole 1024-pixel photo that is a face of ~75 px; a person further away needs a
closer look. So after the whole image come levels of square tiles, each at most half the side
of the level before, until one finds faces of ``min_face`` image pixels. Neighbouring tiles
overlap by more than the smallest face the level above finds, so a face too small for that
level lies whole inside some tile of this one. Every window of every level goes through the
detector in one batch; the candidates are mapped back to the image and merged by weighted NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from argus.tasks.people.detector import decode, plausible, weighted_nms

INPUT_SIZE = 224


@dataclass(frozen=True)
class Window:
    """A square of the image (top-left ``x``, ``y`` and ``side`` in image pixels) that the
    detector sees as 224x224; the part past the image's right or bottom edge is padding."""

    x: float
    y: float
    side: float

    @property
    def gain(self) -> float:
        """Input pixels per image pixel."""
        return INPUT_SIZE / self.side

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` points in input pixels → image pixels."""
        return np.asarray(points, dtype=np.float64) / self.gain + (self.x, self.y)


@dataclass(frozen=True)
class Candidate:
    """A person the detector proposed, in image pixels."""

    face: np.ndarray  # xyxy
    keypoints: np.ndarray  # [4, 2]: mid-hip, full-body point, mid-shoulder, upper-body point
    score: float


def starts(length: int, side: float, overlap: float) -> list[float]:
    """Evenly spread starts of windows of ``side`` covering ``length``, overlapping by at least
    ``overlap`` (one window at 0 when it covers the whole length)."""
    if length <= side:
        return [0.0]
    count = math.ceil((length - overlap) / (side - overlap))
    return [float(v) for v in np.linspace(0.0, length - side, count)]


def windows(
    height: int, width: int, min_face: float, tile_face: float, max_windows: int
) -> list[Window]:
    """The whole image, then levels of overlapping tiles down to faces of ``min_face`` pixels
    (stopping before a level that would take the count past ``max_windows``)."""
    side = float(max(height, width))
    found = [Window(0.0, 0.0, side)]
    smallest = tile_face * side / INPUT_SIZE  # the smallest face this level finds, image px
    while smallest > min_face:
        # The tile side that finds min_face, but no less than half the level above: a face
        # near a tile's edge needs its shoulders in the tile too.
        side = max(INPUT_SIZE * min_face / tile_face, side / 2)
        overlap = min(1.5 * smallest, side / 2)
        # Starts on whole input pixels of this level (rounded up: the last tile still reaches
        # the edge), so a tile cut from the image scaled once per level is the window.
        step = side / INPUT_SIZE
        level = [
            Window(math.ceil(x / step) * step, math.ceil(y / step) * step, side)
            for y in starts(height, side, overlap)
            for x in starts(width, side, overlap)
        ]
        if len(found) + len(level) > max_windows:
            break
        found += level
        smallest = tile_face * side / INPUT_SIZE
    return found


def detector_batch(rgb: np.ndarray, found: list[Window]) -> np.ndarray:
    """``[len(found), 224, 224, 3]`` float32: each window as the detector's input (RGB in
    -1..1, zeros past the image). The image is scaled once per window size, area-averaged, and
    the windows of that size are cut from it (a resize per tile cost twice as much)."""
    h, w = rgb.shape[:2]
    batch = np.zeros((len(found), INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
    scaled: dict[float, np.ndarray] = {}
    for i, window in enumerate(found):
        gain = window.gain
        if window.side not in scaled:
            size = (max(1, round(w * gain)), max(1, round(h * gain)))
            interp = cv2.INTER_AREA if gain < 1 else cv2.INTER_LINEAR
            scaled[window.side] = cv2.resize(rgb, size, interpolation=interp)
        x0, y0 = round(window.x * gain), round(window.y * gain)
        piece = scaled[window.side][y0 : y0 + INPUT_SIZE, x0 : x0 + INPUT_SIZE]
        out = batch[i, : piece.shape[0], : piece.shape[1]]
        np.multiply(piece, 1.0 / 127.5, out=out, casting="unsafe")
        out -= 1.0
    return batch


def candidates(
    boxes: np.ndarray,
    scores: np.ndarray,
    found: list[Window],
    min_score: float,
    iou: float,
    max_torso: float,
) -> list[Candidate]:
    """The detector's outputs for every window → the people it proposes in image pixels, merged
    across windows (weighted NMS on the face boxes), best first."""
    faces, points, kept = [], [], []
    for i, window in enumerate(found):
        for face, keypoints, score in decode(boxes[i], scores[i], min_score, iou):
            if not plausible(face, keypoints, max_torso):
                continue
            faces.append(window.to_image(face.reshape(2, 2)).reshape(4))
            points.append(window.to_image(keypoints))
            kept.append(score)
    if not kept:
        return []
    merged = weighted_nms(np.array(faces), np.array(points), np.array(kept), iou)
    return distinct([Candidate(face, keypoints, score) for face, keypoints, score in merged])


def same_person(a: Candidate, b: Candidate, reach: float = 0.25) -> bool:
    """Whether two candidates put the body in the same place: mid-hips within ``reach`` of the
    body's radius (mid-hip to full-body point) and radii within a factor of 2. The detector's
    face box changes size with the window's scale, so the same person seen whole and in a tile
    can have face boxes that overlap too little to merge."""
    radius_a = float(np.hypot(*(a.keypoints[1] - a.keypoints[0])))
    radius_b = float(np.hypot(*(b.keypoints[1] - b.keypoints[0])))
    if not 0.5 <= radius_a / max(radius_b, 1e-6) <= 2.0:
        return False
    return float(np.hypot(*(a.keypoints[0] - b.keypoints[0]))) < reach * min(radius_a, radius_b)


def distinct(found: list[Candidate]) -> list[Candidate]:
    """Best first, without candidates that are the same person as a better one."""
    kept: list[Candidate] = []
    for candidate in found:
        if not any(same_person(candidate, k) for k in kept):
            kept.append(candidate)
    return kept
