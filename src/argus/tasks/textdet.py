"""Text detection for the ``text`` task: the detector's input size, and its probability map
(DB, "differentiable binarization") turned into one quadrilateral per text line, in reading
order.

The detector answers, for every pixel of its input, the probability that it lies in the shrunk
core of a text line. Lines are the connected regions of that map over ``thresh``; each region's
minimum-area rectangle, kept when the map's mean inside the region reaches ``box_thresh``, is
grown back to the line's full extent ("unclip"). The network was trained to shrink a line's
polygon P by D = area(P) · (1 - r²) / perimeter(P) (r = 0.4); growing the rectangle by
area · ``unclip_ratio`` / perimeter on every side undoes that. For a rectangle, offsetting the
polygon outward by d and taking the minimum-area rectangle of the result is the same rectangle
with both sides 2·d longer, so no polygon clipping library is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Input sides must be multiples of 32 (five stride-2 stages, then upsampling back).
STRIDE = 32


@dataclass(frozen=True)
class DetectorInput:
    """How an image is resized for the detector: the input's size and the image's size."""

    width: int
    height: int
    image_width: int
    image_height: int


def detector_size(width: int, height: int, max_side: int, min_side: int) -> DetectorInput:
    """The detector's input for a ``width`` x ``height`` image: never upscaled beyond what a
    small image needs to reach ``min_side`` (text a few pixels high is not helped by more
    pixels), never larger than ``max_side``, each side rounded to a multiple of 32."""
    scale = 1.0
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
    elif min(width, height) < min_side:
        scale = min(min_side / min(width, height), max_side / max(width, height))

    def side(n: int) -> int:
        return max(STRIDE, round(n * scale / STRIDE) * STRIDE)

    return DetectorInput(side(width), side(height), width, height)


def first_look_holds(
    prob: np.ndarray,
    detector: DetectorInput,
    lines: list[tuple[np.ndarray, float]],
    *,
    min_height: float,
    doubt: float,
) -> bool:
    """Whether the lines found on a shrunk first look (``prob``, the map at that size) are
    all there is: at least one line, every one at least ``min_height`` detector pixels high
    (so none is so small that a larger look would read it otherwise), and nowhere outside
    them does the map reach ``doubt``. Text too small to be found at this size still raises
    the map there (0.2-0.9 for 7-14 px print on a 2400 px photo looked at 480 px wide,
    against at most 0.04 beside the lines of the bench's photos)."""
    if not lines:
        return False
    sx = prob.shape[1] / detector.image_width
    sy = prob.shape[0] / detector.image_height
    covered = np.zeros(prob.shape, dtype=np.uint8)
    for quad, _ in lines:
        scaled = quad * (sx, sy)
        top, bottom = np.hypot(*(scaled[1] - scaled[0])), np.hypot(*(scaled[2] - scaled[3]))
        left, right = np.hypot(*(scaled[3] - scaled[0])), np.hypot(*(scaled[2] - scaled[1]))
        if min(max(top, bottom), max(left, right)) < min_height:
            return False
        cv2.fillPoly(covered, [np.round(scaled).astype(np.int32)], 1)
    # Two pixels around each line are its own edge, not something else.
    around = cv2.dilate(covered, np.ones((5, 5), np.uint8))
    return float(prob[around == 0].max(initial=0.0)) < doubt


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four corners as top-left, top-right, bottom-right, bottom-left (image y points down)."""
    by_x = points[np.argsort(points[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1], kind="stable")]
    top_right, bottom_right = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([top_left, top_right, bottom_right, bottom_left], dtype=np.float32)


def region_score(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean probability inside the contour (over its bounding rectangle only, for speed)."""
    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(prob[y : y + h, x : x + w], mask)[0])


def find_lines(
    prob: np.ndarray,
    detector: DetectorInput,
    *,
    thresh: float = 0.3,
    box_thresh: float = 0.5,
    unclip_ratio: float = 1.6,
    max_lines: int = 500,
    min_size: float = 3.0,
) -> list[tuple[np.ndarray, float]]:
    """``[H, W]`` probabilities → (corners ``[4, 2]`` in image pixels, detection score) per
    line, in reading order."""
    # A 2x2 dilation joins characters that the shrunk cores leave one pixel apart.
    mask = cv2.dilate((prob > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    sx = detector.image_width / prob.shape[1]
    sy = detector.image_height / prob.shape[0]
    lines: list[tuple[np.ndarray, float]] = []
    # The largest regions first, so a flood of specks cannot push real lines past max_lines.
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[: max_lines * 2]:
        if len(lines) >= max_lines:
            break
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < min_size:
            continue
        score = region_score(prob, contour)
        if score < box_thresh:
            continue
        grow = w * h * unclip_ratio / (2 * (w + h))
        w, h = w + 2 * grow, h + 2 * grow
        if min(w, h) < min_size + 2:
            continue
        corners = cv2.boxPoints(((cx, cy), (w, h), angle))
        corners[:, 0] = np.clip(corners[:, 0] * sx, 0, detector.image_width)
        corners[:, 1] = np.clip(corners[:, 1] * sy, 0, detector.image_height)
        lines.append((order_corners(corners), score))
    return reading_order(lines)


def reading_order(lines: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
    """Top to bottom, and left to right within a row: a line joins the row above when its
    centre lies within half that row's first line's height of the row's centre."""
    if not lines:
        return []

    def centre_y(quad: np.ndarray) -> float:
        return float(quad[:, 1].mean())

    def height(quad: np.ndarray) -> float:
        return float(
            (np.hypot(*(quad[3] - quad[0])) + np.hypot(*(quad[2] - quad[1]))) / 2
        )

    ordered = sorted(lines, key=lambda line: centre_y(line[0]))
    rows: list[list[tuple[np.ndarray, float]]] = []
    row_y = row_h = -math.inf
    for line in ordered:
        y = centre_y(line[0])
        if rows and abs(y - row_y) <= row_h / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
            row_y, row_h = y, height(line[0])
    return [line for row in rows for line in sorted(row, key=lambda item: float(item[0][0, 0]))]
