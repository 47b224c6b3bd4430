"""Where the detector looks: the whole image, then closer scales in tiles, down to the promised
face size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from argus.tasks.people.search import (
    LEVEL_STEP,
    Candidate,
    View,
    candidates,
    detector_inputs,
    distinct,
    spans,
    views,
)


def test_a_small_image_is_one_view_at_the_detectors_size() -> None:
    # MediaPipe's look: letterboxed into 224x224.
    assert views(300, 400, 40.0, 14.0, 224, 200_000) == [View(224 / 400, 0, 0, 224, 224)]


def test_tiles_reach_the_smallest_face_and_cover_the_image_with_overlap() -> None:
    found = views(768, 1024, 40.0, 14.0, 224, 200_000)
    assert found[0] == View(224 / 1024, 0, 0, 224, 224)
    tiles = found[1:]
    # 1024x768 at the scale that makes 40-pixel faces 14 input pixels: 358x269, in 4 tiles.
    assert len(tiles) == 4
    assert all(t.gain == pytest.approx(14.0 / 40.0) for t in tiles)
    assert all(t.height % 32 == 0 and t.width % 32 == 0 and max(t.height, t.width) <= 224
               for t in tiles)  # fmt: skip
    # Every input pixel of the scaled image is in some tile, and neighbours overlap by more
    # than the smallest face the whole image finds (14 * 1024 / 224 = 64 px; 22 input px).
    covered = np.zeros((269, 358), bool)
    for t in tiles:
        covered[t.y : t.y + t.height, t.x : t.x + t.width] = True
    assert covered.all()
    xs = sorted({t.x for t in tiles})
    assert xs[0] + tiles[0].width - xs[1] > 64 * 14.0 / 40.0
    assert sum(v.pixels for v in found) < 5 * 224 * 224  # MediaPipe's square tiles: 5 windows


@pytest.mark.parametrize(
    ("length", "side", "overlap"), [(358, 224, 34), (700, 224, 50), (90, 224, 9)]
)
def test_spans_cover_the_length(length: int, side: int, overlap: float) -> None:
    tile, found = spans(length, side, overlap)
    assert tile % 32 == 0 and tile <= max(side, 32)
    assert found[0] == 0 and found[-1] + tile >= length
    assert all(a + tile - b >= overlap for a, b in itertools.pairwise(found))


def test_each_scale_is_at_most_a_step_above_the_last() -> None:
    found = views(250, 4000, 40.0, 14.0, 224, 10_000_000)  # a panorama: far from 224 across
    gains = sorted({v.gain for v in found})
    assert gains[-1] == pytest.approx(14.0 / 40.0)
    assert all(b / a <= LEVEL_STEP + 1e-9 for a, b in itertools.pairwise(gains))
    assert len(gains) == 3


def test_the_pixels_looked_at_are_bounded() -> None:
    """A level that would take the input pixels past the budget is not looked at."""
    assert sum(v.pixels for v in views(4000, 4000, 40.0, 14.0, 224, 200_000)) <= 200_000
    assert views(768, 1024, 40.0, 14.0, 224, 100_000) == [View(224 / 1024, 0, 0, 224, 224)]


def test_a_view_is_cut_from_the_image_at_its_scale() -> None:
    rgb = np.zeros((400, 600, 3), np.uint8)
    rgb[100:200, 300:400] = 255
    tile = View(0.5, 100, 0, 224, 224)  # half scale: 300x200, cut from x = 100 input px
    ((group, x),) = detector_inputs(rgb, [tile])
    assert group == [tile] and x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    assert x[0, 75, 75].tolist() == [1.0, 1.0, 1.0]  # the square: 150..200 → 50..100 in the tile
    assert x[0, 10, 10].tolist() == [-1.0, -1.0, -1.0]  # black image
    assert x[0, 210, 10].tolist() == [0.0, 0.0, 0.0]  # below the image: padding
    assert x[0, 10, 210].tolist() == [0.0, 0.0, 0.0]  # right of it (300 - 100 = 200 wide)
    assert tile.to_image(np.array([[75.0, 75.0]])).tolist() == [[350.0, 150.0]]


def person(hip: tuple[float, float], radius: float, score: float) -> Candidate:
    keypoints = np.array([hip, (hip[0], hip[1] - radius), (hip[0], hip[1] - 0.6 * radius),
                          (hip[0], hip[1] - 1.2 * radius)])  # fmt: skip
    return Candidate(np.array([0.0, 0.0, 10.0, 10.0]), keypoints, score)


def test_the_same_body_from_two_scales_is_one_candidate() -> None:
    whole = person((300.0, 500.0), 400.0, 0.95)
    closer = person((320.0, 480.0), 380.0, 0.9)  # the same body, a little off
    other = person((800.0, 500.0), 400.0, 0.8)  # someone beside
    inside = person((300.0, 420.0), 100.0, 0.7)  # a small body in front: another person
    assert distinct([whole, closer, other, inside]) == [whole, other, inside]


def test_across_views_the_best_proposal_stands_whole() -> None:
    """One person proposed by two views: the better proposal's box and keypoints, not a mean
    with the worse one (a person half in a tile is proposed with a skewed body)."""
    whole, tile = View(0.25, 0, 0, 224, 224), View(0.5, 0, 0, 224, 224)
    outputs = []
    for where, score, hip_y in ((whole, 4.0, 150.0), (tile, 1.0, 120.0)):
        boxes = np.zeros((2254, 12), np.float32)
        scores = np.full((2254, 1), -10.0, np.float32)
        # Anchor 0 sits at (4, 4): a face 40 input px wide centred at (100, 60) in the image's
        # pixels * gain, the mid-hip below it and the body's radius point above.
        centre = np.array([100.0, 60.0]) * where.gain - 4.0
        boxes[0, :4] = [*centre, 40 * where.gain, 40 * where.gain]
        hip = np.array([100.0, hip_y]) * where.gain - 4.0
        top = np.array([100.0, 0.0]) * where.gain - 4.0
        boxes[0, 4:12] = [*hip, *top, *hip, *top]
        scores[0] = score
        outputs.append((boxes, scores))
    (found,) = candidates(outputs, [whole, tile], 0.5, 0.3, 5.0)
    assert found.keypoints[0].tolist() == pytest.approx([100.0, 150.0])  # the whole view's
    assert found.score == pytest.approx(1 / (1 + np.exp(-4.0)))
