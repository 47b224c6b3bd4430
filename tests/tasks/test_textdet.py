"""DB post-processing on probability maps drawn here: lines, their unclipped corners, order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from argus.tasks.textdet import (
    DetectorInput,
    detector_size,
    find_lines,
    first_look_holds,
    order_corners,
    reading_order,
)


def prob_map(*rects: tuple[tuple[float, float], tuple[float, float], float],
             size: tuple[int, int] = (200, 320), level: float = 0.9) -> np.ndarray:
    """A map of ``level`` inside each rotated rectangle ((cx, cy), (w, h), angle), 0 outside."""
    prob = np.zeros(size, dtype=np.float32)
    for rect in rects:
        cv2.fillPoly(prob, [np.round(cv2.boxPoints(rect)).astype(np.int32)], level)
    return prob


def test_detector_size_never_upscales_a_readable_image_and_caps_large_ones() -> None:
    page = detector_size(384, 191, max_side=960, min_side=64)
    assert (page.width, page.height) == (384, 192)  # as it is, to a multiple of 32
    big = detector_size(4000, 3000, max_side=960, min_side=64)
    assert (big.width, big.height) == (960, 704)  # 720 to the nearest multiple of 32
    tiny = detector_size(90, 20, max_side=960, min_side=64)
    assert tiny.height == 64 and tiny.width == 288  # grown to the minimum side
    assert detector_size(10, 10, 960, 32).width == 32


def test_a_line_is_grown_back_to_its_extent() -> None:
    # The network's core of a 200 x 30 line is 200 - 2D by 30 - 2D, D = A(1 - 0.16)/L.
    core_w, core_h = 180.0, 12.0
    lines = find_lines(prob_map(((160, 100), (core_w, core_h), 0)),
                       detector_size(320, 200, 960, 64))
    assert len(lines) == 1
    corners, score = lines[0]
    # The mean over the region found, whose dilated border ring lies outside the core.
    assert 0.75 < score < 0.9
    grow = core_w * core_h * 1.6 / (2 * (core_w + core_h))
    (x0, y0), (x1, _), (_, y2), _ = corners
    assert x1 - x0 == pytest.approx(core_w + 2 * grow, abs=3)
    assert y2 - y0 == pytest.approx(core_h + 2 * grow, abs=3)


def test_corners_follow_a_slanted_line_and_scale_to_the_image() -> None:
    prob = prob_map(((160, 100), (200, 16), -10))
    # The map is half the image's size: corners come back in image pixels.
    ((corners, _),) = find_lines(prob, _geometry(640, 400, 320, 200))
    assert corners[:, 0].max() > 500 and corners[:, 1].max() < 400
    top = corners[1] - corners[0]
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(-10, abs=1.5)


def _geometry(image_w: int, image_h: int, w: int, h: int) -> DetectorInput:
    return DetectorInput(w, h, image_w, image_h)


def test_weak_small_and_many_regions_are_dropped_or_capped() -> None:
    geo = _geometry(320, 200, 320, 200)
    assert find_lines(prob_map(((160, 100), (100, 20), 0), level=0.4), geo) == []  # < box_thresh
    thin = np.zeros((200, 320), np.float32)
    thin[100, 100:200] = 0.9
    assert find_lines(thin, geo) == []  # one pixel high, two once dilated: under 3
    specks = prob_map(*[((10 + 20 * i, 20 + 40 * j), (12, 6), 0)
                        for i in range(15) for j in range(4)])
    assert len(find_lines(specks, geo, max_lines=7)) == 7


def test_reading_order_is_rows_top_down_then_left_to_right() -> None:
    def line(x: float, y: float) -> tuple[np.ndarray, float]:
        return np.array([[x, y], [x + 50, y], [x + 50, y + 20], [x, y + 20]], np.float32), 1.0

    shuffled = [line(200, 52), line(0, 0), line(100, 48), line(0, 50), line(120, 3)]
    ordered = [(float(q[0, 0]), float(q[0, 1])) for q, _ in reading_order(shuffled)]
    assert ordered == [(0, 0), (120, 3), (0, 50), (100, 48), (200, 52)]


def test_order_corners() -> None:
    shuffled = np.array([[10, 5], [0, 0], [0, 5], [10, 0]], np.float32)
    assert order_corners(shuffled).tolist() == [[0, 0], [10, 0], [10, 5], [0, 5]]


def test_a_first_look_holds_only_with_tall_lines_and_nothing_else_like_text() -> None:
    # The map at half the image's size: lines come back in image pixels, twice as large.
    look = DetectorInput(320, 200, 640, 400)
    tall = ((120, 60), (160, 16), 0)
    prob = prob_map(tall)
    lines = find_lines(prob, look)
    assert len(lines) == 1

    def holds(p: np.ndarray, found: list[tuple[np.ndarray, float]]) -> bool:
        return first_look_holds(p, look, found, min_height=16, doubt=0.1)

    assert holds(prob, lines)
    # Something faint beside the line: text too small to be found at this size.
    faint = prob.copy()
    faint[150:154, 40:120] = 0.2
    assert len(find_lines(faint, look)) == 1 and not holds(faint, lines)
    # A line under the height asked for (a core 4 map pixels high, grown to about 11).
    short = prob_map(tall, ((200, 150), (160, 4), 0))
    assert len(find_lines(short, look)) == 2 and not holds(short, find_lines(short, look))
    # Nothing found is no proof of no text.
    empty = np.zeros((200, 320), np.float32)
    assert not holds(empty, [])
