"""Where the detector looks: the whole image at the detector's own scale, then the image
enlarged until the smallest face it finds is as small as the face the package promises to find,
in tiles.

The detector finds people whose face is at least about ``tile_face`` input pixels wide
(measured on scikit-image's astronaut and the collages of the tests). MediaPipe shows it the
image squeezed into 224x224: on a 1024-pixel photo that finds faces of ~64 px and up; a person
further away needs a closer look. The converted detector is fully convolutional and takes any
input whose sides are multiples of 32, so a view is any part of the image at any scale. A
closer look is the image at the scale that finds faces of ``min_face`` image pixels (each
scale at most :data:`LEVEL_STEP` times the one before, so the largest face a view finds
reaches below the smallest of the view before), cut into tiles of at most ``tile_side``
input pixels a side: the detector is tuned for one or a few people, and over a larger input
the people it finds strongly hide the small ones (a 49-pixel face beside three others is not
found at all in one 384x288 view, and is at 0.9 in the 224x224 tile holding it).
Neighbouring tiles overlap by more than the smallest face the scale before finds, so a face
too small for that scale lies whole inside some tile of this one. The tiles of a scale have
one size and go through the detector in one batch; the candidates of every view are mapped
back to the image and merged by weighted NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from argus.tasks.people.detector import INPUT_SIZE, STEP, decode, plain_nms, plausible

# The largest ratio between the scales of two successive levels. The detector finds faces from
# ``tile_face`` (14) to well over 3 x 14 input pixels wide.
LEVEL_STEP = 3.0


@dataclass(frozen=True)
class View:
    """A ``height`` x ``width`` input (multiples of 32) cut at (``x``, ``y``) input pixels from
    the image scaled by ``gain`` (input pixels per image pixel); past the image is padding."""

    gain: float
    x: int
    y: int
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` points in input pixels → image pixels."""
        offset = np.array([self.x, self.y], dtype=np.float64)
        return (np.asarray(points, dtype=np.float64) + offset) / self.gain


@dataclass(frozen=True)
class Candidate:
    """A person the detector proposed, in image pixels."""

    face: np.ndarray  # xyxy
    keypoints: np.ndarray  # [4, 2]: mid-hip, full-body point, mid-shoulder, upper-body point
    score: float


def up(n: float) -> int:
    """``n`` rounded up to a multiple of :data:`STEP` (at least one)."""
    return max(STEP, math.ceil(n / STEP) * STEP)


def spans(length: int, side: int, overlap: float) -> tuple[int, list[int]]:
    """Tiles along one axis of ``length`` input pixels: their common side (a multiple of 32, at
    most about ``side``) and starts, evenly spread, neighbours overlapping by ``overlap`` or
    more; one tile when ``length`` fits in ``side``."""
    if up(length) <= side:
        return up(length), [0]
    count = math.ceil((length - overlap) / (side - overlap))
    tile = up((length + (count - 1) * overlap) / count)
    return tile, [round(v) for v in np.linspace(0.0, length - tile, count)]


def level(height: int, width: int, gain: float, tile_side: int, overlap: float) -> list[View]:
    """The image at ``gain`` as one view, or as tiles of one size when it is larger than
    ``tile_side``."""
    sh, sw = max(1, round(height * gain)), max(1, round(width * gain))
    tile_h, ys = spans(sh, tile_side, overlap)
    tile_w, xs = spans(sw, tile_side, overlap)
    return [View(gain, x, y, tile_h, tile_w) for y in ys for x in xs]


def views(
    height: int,
    width: int,
    min_face: float,
    tile_face: float,
    tile_side: int,
    max_pixels: int,
    overlap: float = 1.5,
) -> list[View]:
    """The whole image as MediaPipe shows it (its longer side 224 input pixels), then larger
    scales in tiles, until faces of ``min_face`` image pixels are ``tile_face`` input pixels
    wide; together at most ``max_pixels`` input pixels (a level that would pass it is not
    looked at)."""
    # MediaPipe's own look, letterboxed into a square: cut to the image's aspect, the
    # detector proposes more that are not people (a pillar in scikit-learn's china mirrored).
    found = [View(INPUT_SIZE / max(height, width), 0, 0, INPUT_SIZE, INPUT_SIZE)]
    wanted = tile_face / min_face  # the gain at which the smallest promised face is found
    gain = found[0].gain
    while gain < wanted:
        smallest = tile_face / gain  # image pixels: the smallest face the level above finds
        gain = min(wanted, gain * LEVEL_STEP)
        tiles = level(height, width, gain, tile_side, overlap * smallest * gain)
        if sum(v.pixels for v in found + tiles) > max_pixels:
            break
        found += tiles
    return found


def detector_inputs(rgb: np.ndarray, found: list[View]) -> list[tuple[list[View], np.ndarray]]:
    """The views grouped by scale, each group with its ``[tiles, height, width, 3]`` float32
    input: the image scaled once per scale (area-averaged when shrunk), each tile cut from it,
    RGB in -1..1, zeros past the image.

    Area-averaging by a whole factor is several times faster in OpenCV than by a fraction, so
    the image is first shrunk by the largest whole factor all scales allow (1024x768 → 512x384
    for both of its scales) and each scale made from that: 2-3 ms in all instead of 7. The
    last ``factor - 1`` rows and columns, under one input pixel, are left out."""
    groups: dict[float, list[View]] = {}
    for v in found:
        groups.setdefault(v.gain, []).append(v)
    factor = int(1.0 / max(groups)) if max(groups) < 1 else 1
    if factor >= 2:
        h, w = rgb.shape[0] // factor * factor, rgb.shape[1] // factor * factor
        base = cv2.resize(rgb[:h, :w], (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    else:
        base, (h, w) = rgb, rgb.shape[:2]
    out = []
    for gain, tiles in groups.items():
        size = (max(1, round(w * gain)), max(1, round(h * gain)))
        interp = cv2.INTER_AREA if size[0] < base.shape[1] else cv2.INTER_LINEAR
        scaled = cv2.resize(base, size, interpolation=interp)
        batch = np.zeros((len(tiles), tiles[0].height, tiles[0].width, 3), dtype=np.float32)
        for i, v in enumerate(tiles):
            piece = scaled[v.y : v.y + v.height, v.x : v.x + v.width]
            into = batch[i, : piece.shape[0], : piece.shape[1]]
            np.multiply(piece, 1.0 / 127.5, out=into, casting="unsafe")
            into -= 1.0
        out.append((tiles, batch))
    return out


def candidates(
    outputs: list[tuple[np.ndarray, np.ndarray]],
    found: list[View],
    min_score: float,
    iou: float,
    max_torso: float,
) -> list[Candidate]:
    """The detector's (boxes, scores) for every view → the people it proposes in image pixels,
    merged across views (weighted NMS on the face boxes), best first."""
    faces, points, kept = [], [], []
    for (boxes, scores), where in zip(outputs, found, strict=True):
        size = (where.height, where.width)
        for face, keypoints, score in decode(boxes, scores, min_score, iou, size):
            if not plausible(face, keypoints, max_torso):
                continue
            faces.append(where.to_image(face.reshape(2, 2)).reshape(4))
            points.append(where.to_image(keypoints))
            kept.append(score)
    if not kept:
        return []
    # Across views the best proposal of a person stands for it whole, not a mean: a person at
    # a tile's edge is proposed with the body half seen, and averaged in, that skewed the
    # region the landmark network looks at until it saw no one (a 73-pixel face at 0.94 lost).
    best = plain_nms(np.array(faces), np.array(kept), iou)
    return distinct([Candidate(faces[i], points[i], kept[i]) for i in best])


def same_person(a: Candidate, b: Candidate, reach: float = 0.25) -> bool:
    """Whether two candidates put the body in the same place: mid-hips within ``reach`` of the
    body's radius (mid-hip to full-body point) and radii within a factor of 2. The detector's
    face box changes size with the view's scale, so the same person seen at two scales can have
    face boxes that overlap too little to merge."""
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
