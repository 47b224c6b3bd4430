"""Where the detector looks: the whole image, then tiles down to the promised face size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from argus.tasks.people.search import (
    INPUT_SIZE,
    Candidate,
    Window,
    detector_batch,
    distinct,
    starts,
    windows,
)


def test_a_small_image_is_one_window() -> None:
    assert windows(300, 400, 40.0, 14.0, 12) == [Window(0.0, 0.0, 400.0)]


def test_tiles_reach_the_smallest_face_and_cover_the_image_with_overlap() -> None:
    found = windows(768, 1024, 40.0, 14.0, 12)
    assert found[0] == Window(0.0, 0.0, 1024.0)
    tiles = found[1:]
    assert len(tiles) == 4
    # Each tile finds faces of 40 px: 14 input pixels.
    assert all(14.0 * t.side / INPUT_SIZE <= 40.0 for t in tiles)
    # Every pixel is in some tile, and neighbours overlap by more than the smallest face the
    # whole image finds (14 * 1024 / 224 = 64 px).
    covered = np.zeros((768, 1024), bool)
    for t in tiles:
        covered[int(t.y) : int(t.y + t.side), int(t.x) : int(t.x + t.side)] = True
    assert covered.all()
    xs = sorted({t.x for t in tiles})
    assert xs[0] + tiles[0].side - xs[1] > 64


def test_the_window_count_is_bounded() -> None:
    found = windows(4000, 4000, 40.0, 14.0, 12)
    assert len(found) <= 12
    assert len(windows(4000, 4000, 40.0, 14.0, 1)) == 1


@pytest.mark.parametrize(("length", "side", "overlap"), [(1024, 640, 96), (700, 300, 50)])
def test_starts_cover_the_length(length: int, side: float, overlap: float) -> None:
    found = starts(length, side, overlap)
    assert found[0] == 0 and found[-1] + side == pytest.approx(length)
    assert all(b - a <= side - overlap + 1e-9 for a, b in itertools.pairwise(found))


def test_a_window_is_scaled_into_the_input_at_its_corner() -> None:
    rgb = np.zeros((400, 600, 3), np.uint8)
    rgb[100:200, 300:400] = 255
    window = Window(200.0, 0.0, 448.0)  # half scale, the part past the image is padding
    (x,) = detector_batch(rgb, [window])
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    assert x[75, 75].tolist() == [1.0, 1.0, 1.0]  # the white square, at (300-200)/2 .. (400-200)/2
    assert x[10, 10].tolist() == [-1.0, -1.0, -1.0]  # black image
    assert x[210, 10].tolist() == [0.0, 0.0, 0.0]  # below the image: padding
    assert window.to_image(np.array([[75.0, 75.0]])).tolist() == [[350.0, 150.0]]


def person(hip: tuple[float, float], radius: float, score: float) -> Candidate:
    keypoints = np.array([hip, (hip[0], hip[1] - radius), (hip[0], hip[1] - 0.6 * radius),
                          (hip[0], hip[1] - 1.2 * radius)])  # fmt: skip
    return Candidate(np.array([0.0, 0.0, 10.0, 10.0]), keypoints, score)


def test_the_same_body_from_two_windows_is_one_candidate() -> None:
    whole = person((300.0, 500.0), 400.0, 0.95)
    tile = person((320.0, 480.0), 380.0, 0.9)  # the same body, a little off
    other = person((800.0, 500.0), 400.0, 0.8)  # someone beside
    inside = person((300.0, 420.0), 100.0, 0.7)  # a small body in front: another person
    assert distinct([whole, tile, other, inside]) == [whole, other, inside]
