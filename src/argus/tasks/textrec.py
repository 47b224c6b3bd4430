"""Text recognition for the ``text`` task: each detected line cut out straight, grouped into
width buckets so lines of similar length run as one batch, and the network's per-column
best characters decoded (CTC, greedy). The package's recogniser answers only each column's
most probable class and its probability (see :func:`argus.convert.ppocr.best_of_columns`);
a recogniser answering every class's probability is reduced to that here.

The recogniser reads a line 48 pixels high and any width; it answers one distribution over
its characters for every 8 columns, and its cost grows with the columns it reads, padding
included: on CPU a batch saves per-call overhead, never arithmetic. So buckets are as narrow
as the network's stride (8 px: at most 7 padded columns a line) and a batch is the lines of
one bucket, where batches of lines sorted by width and padded to the widest (PP-OCR's way)
pad 5-20% on a page of similar lines, and short words to 320 px. The ``text`` task reads one
line per run by default: on one thread, a page's lines one at a time took 6-29% less CPU
than in batches of up to 16 (smaller activations stay in cache), and lines on two threads
balance better than batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

LINE_HEIGHT = 48
# Bucket width step, the recogniser's 8-column stride, and the widest line read: 64 line
# heights, about 170 characters of Latin text (longer lines are squeezed to it).
BUCKET = 8
MAX_WIDTH = 3072
# Most line columns one recogniser run reads (a wider line runs alone): its head computes 18,710
# probabilities for every 8 columns, so 4,096 columns hold 38 MB of them (a batch of 16 lines
# 1,536 px wide would hold 230).
COLUMNS_PER_RUN = 4096
# The recogniser's outputs as packaged: per line and column, the most probable class (int64,
# 0 is the CTC blank) and its probability.
BEST_CLASS = "best_class"
BEST_PROBABILITY = "best_probability"
# The orientation classifier's fixed input.
CLS_HEIGHT, CLS_WIDTH = 48, 192


def normalise(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB → 3xHxW float32 in -1..1, channels in BGR order (PaddleOCR's networks
    were trained on OpenCV's BGR images). The one copy is the float conversion."""
    arr = rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
    arr *= 1.0 / 127.5
    arr -= 1.0
    return arr


def sides(quad: np.ndarray) -> tuple[float, float]:
    """(width, height) of a quadrilateral: its longer top/bottom and left/right edges."""
    top = float(np.hypot(*(quad[1] - quad[0])))
    bottom = float(np.hypot(*(quad[2] - quad[3])))
    left = float(np.hypot(*(quad[3] - quad[0])))
    right = float(np.hypot(*(quad[2] - quad[1])))
    return max(top, bottom, 1.0), max(left, right, 1.0)


def text_corners(quad: np.ndarray) -> np.ndarray:
    """The corners in the text's own order (its top-left first). A line much taller than
    wide is a column of text running down the image: its top-right corner (in the image) is
    where the text starts, so it is read turned a quarter anticlockwise."""
    w, h = sides(quad)
    return np.roll(quad, -1, axis=0) if h >= 1.5 * w else quad


def cut_line(rgb: np.ndarray, quad: np.ndarray, height: int = LINE_HEIGHT) -> np.ndarray:
    """The line inside ``quad`` (its own TL, TR, BR, BL, in ``rgb``'s pixels) straightened by
    a perspective warp to ``height`` pixels high, its width in proportion (at most
    :data:`MAX_WIDTH`). Lines far taller than ``height`` are cut at full size then shrunk by
    area averaging, so thin strokes are not lost to the warp's sampling."""
    w, h = sides(quad)
    out_h = height if h <= 2 * height else max(height, round(h))
    out_w = max(1, min(round(w * out_h / h), MAX_WIDTH * out_h // height))
    target = np.array(
        [[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], dtype=np.float32
    )
    warp = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    line = cv2.warpPerspective(
        rgb, warp, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if out_h != height:
        new_w = max(1, min(round(out_w * height / out_h), MAX_WIDTH))
        line = cv2.resize(line, (new_w, height), interpolation=cv2.INTER_AREA)
    return line


def bucket_width(width: int) -> int:
    """The smallest bucket at least ``width`` wide: a multiple of :data:`BUCKET`."""
    return min(MAX_WIDTH, max(BUCKET, -(-width // BUCKET) * BUCKET))


def pad_batch(lines: Sequence[np.ndarray], width: int) -> np.ndarray:
    """``[N, 3, 48, width]``: each line normalised, left-aligned, the rest 0 (mid-grey, as
    the network saw padding in training)."""
    batch = np.zeros((len(lines), 3, lines[0].shape[0], width), dtype=np.float32)
    for i, line in enumerate(lines):
        batch[i, :, :, : line.shape[1]] = normalise(line[:, :width])
    return batch


@dataclass(frozen=True)
class Reading:
    text: str
    score: float


Columns = tuple[np.ndarray, np.ndarray]
"""Per line and column (``[N, T]`` each): the most probable class (0 is the CTC blank) and its
probability."""


def best_of(probs: np.ndarray) -> Columns:
    """``[N, T, C]`` probabilities → :data:`Columns` (the first of equal ones, as ArgMax)."""
    best = probs.argmax(axis=2)
    return best, np.take_along_axis(probs, best[:, :, None], axis=2)[:, :, 0]


def ctc_greedy(
    best: np.ndarray, probability: np.ndarray, characters: Sequence[str], columns: int
) -> Reading:
    """One line's ``[T]`` best classes and their probabilities → the text and the mean
    probability of its characters. Only the first ``columns`` columns belong to the line;
    the rest saw padding."""
    best = best[: max(1, columns)]
    # A character is a column whose class is not blank and differs from the column before.
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    chosen = best[keep]
    if not chosen.size:
        return Reading("", 0.0)
    text = "".join(characters[i - 1] for i in chosen if 0 < i <= len(characters))
    return Reading(text, float(probability[: len(keep)][keep].mean()))


def in_buckets(widths: Sequence[int], max_batch: int) -> list[tuple[int, list[int]]]:
    """Indices of lines grouped by bucket width, each group at most ``max_batch`` long and
    at most :data:`COLUMNS_PER_RUN` columns in all (so memory stays bounded)."""
    groups: dict[int, list[int]] = {}
    for i, width in enumerate(widths):
        groups.setdefault(bucket_width(width), []).append(i)
    out: list[tuple[int, list[int]]] = []
    for bucket in sorted(groups):
        members = groups[bucket]
        size = max(1, min(max_batch, COLUMNS_PER_RUN // bucket))
        for start in range(0, len(members), size):
            out.append((bucket, members[start : start + size]))
    return out


def read_batch(
    run: Callable[[np.ndarray], Columns],
    lines: Sequence[np.ndarray],
    width: int,
    characters: Sequence[str],
) -> list[Reading]:
    """Read ``lines`` (48 px high RGB, at most ``width`` wide) as one batch padded to
    ``width``, with ``run`` (the recogniser: ``[N, 3, 48, W]`` → :data:`Columns` of ``W/8``
    columns)."""
    best, probability = run(pad_batch(lines, width))
    per_column = width / best.shape[1]
    return [
        ctc_greedy(best[row], probability[row], characters,
                   math.ceil(min(line.shape[1], width) / per_column))
        for row, line in enumerate(lines)
    ]


def recognise(
    run: Callable[[np.ndarray], Columns],
    lines: Sequence[np.ndarray],
    characters: Sequence[str],
    max_batch: int,
) -> list[Reading]:
    """Read every line with ``run``, batched by width bucket (see :func:`read_batch`)."""
    readings: list[Reading] = [Reading("", 0.0)] * len(lines)
    for width, members in in_buckets([line.shape[1] for line in lines], max_batch):
        for i, reading in zip(
            members, read_batch(run, [lines[i] for i in members], width, characters),
            strict=True,
        ):
            readings[i] = reading
    return readings


def upside_down(
    run: Callable[[np.ndarray], np.ndarray], lines: Sequence[np.ndarray], threshold: float
) -> list[bool]:
    """Whether each line reads upside down, by the orientation classifier (``[N, 3, 48,
    192]`` → ``[N, 2]``: 0 and 180 degrees), trusted only above ``threshold``."""
    if not lines:
        return []
    batch = np.zeros((len(lines), 3, CLS_HEIGHT, CLS_WIDTH), dtype=np.float32)
    for i, line in enumerate(lines):
        w = min(CLS_WIDTH, max(1, round(line.shape[1] * CLS_HEIGHT / line.shape[0])))
        small = cv2.resize(line, (w, CLS_HEIGHT), interpolation=cv2.INTER_AREA)
        batch[i, :, :, :w] = normalise(small)
    probs = run(batch)
    return [bool(p[1] > p[0] and p[1] >= threshold) for p in probs]
