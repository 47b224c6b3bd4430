"""The landmark stage's geometry: the upright region, the warp and the way back."""

from __future__ import annotations

import numpy as np
import pytest

from argus.images.draw import BONES
from argus.tasks.people.landmarks import (
    CROP_SIZE,
    LANDMARK_NAMES,
    Region,
    crop,
    landmarks_in_image,
    region,
    visible_box,
)
from argus.tasks.people.search import Candidate


def candidate(hip: tuple[float, float], top: tuple[float, float]) -> Candidate:
    keypoints = np.array([hip, top, hip, top], dtype=np.float64)
    return Candidate(np.zeros(4), keypoints, 0.9)


@pytest.mark.parametrize(
    ("top", "angle"),
    [((200.0, 100.0), 0.0), ((300.0, 200.0), np.pi / 2), ((200.0, 300.0), np.pi),
     ((100.0, 200.0), -np.pi / 2)],
)  # fmt: skip
def test_the_region_turns_the_body_upright(top: tuple[float, float], angle: float) -> None:
    where = region(candidate((200.0, 200.0), top))
    assert (where.cx, where.cy) == (200.0, 200.0)
    assert where.side == pytest.approx(2 * 100 * 1.25)
    assert abs(np.angle(np.exp(1j * (where.angle - angle)))) < 1e-9
    # The crop's top centre is the full-body point's side of the image.
    matrix = where.crop_to_image()
    up = matrix @ np.array([CROP_SIZE / 2, 0.0, 1.0])
    direction = (np.array(top) - (200.0, 200.0)) / 100.0
    assert np.allclose((up - (200.0, 200.0)) / (where.side / 2), direction)


def test_crop_and_landmarks_map_the_same_way() -> None:
    """A bright dot in the image lands in the crop where the crop-to-image map says, and a
    landmark at that crop position comes back at the dot."""
    rgb = np.zeros((400, 400, 3), np.uint8)
    rgb[148:153, 258:263] = 255  # a dot at (260.5, 150.5) in edge-at-integer coordinates
    where = Region(200.0, 200.0, 256.0, np.pi / 6)
    out = np.empty((CROP_SIZE, CROP_SIZE, 3), np.float32)
    crop(rgb, where, out)
    assert out.max() == pytest.approx(1.0) and out.min() == 0.0
    ys, xs = np.nonzero(out[..., 0] > 0.5)
    found = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    raw = np.zeros((39, 5))
    raw[:, :2] = found
    points = landmarks_in_image(raw.ravel(), where)
    assert np.allclose(points[0, :2], (260.5, 150.5), atol=0.6)
    assert points.shape == (33, 5)
    assert np.allclose(points[:, 3:], 0.5)  # logit 0: visibility and presence one half


def test_the_box_holds_the_visible_landmarks_and_the_head() -> None:
    points = np.zeros((33, 5))
    points[:, 3:] = 1.0
    points[:, 0] = np.linspace(100, 200, 33)
    points[:, 1] = np.linspace(100, 450, 33)
    points[2, :2], points[5, :2] = (130, 100), (170, 100)  # eyes
    points[9, :2], points[10, :2] = (140, 130), (160, 130)  # mouth, 30 px below them
    points[20:, 3] = 0.1  # the legs are not seen
    x1, y1, x2, y2 = visible_box(points, 0.5, 500, 500)  # type: ignore[misc]
    seen = points[:20]
    assert x1 <= seen[:, 0].min() and x2 >= seen[:, 0].max()
    assert 25 <= y1 <= 35  # the head top 60 px above the eyes, less 4% of the box (~11 px)
    assert y2 < points[25, 1]
    points[9, 3] = 0.0  # no mouth seen: no head top, the box starts at the eyes
    assert visible_box(points, 0.5, 500, 500)[1] > 80  # type: ignore[index]
    points[:, 3] = 0.0
    assert visible_box(points, 0.5, 500, 500) is None


def test_the_skeleton_joins_named_landmarks() -> None:
    assert len(LANDMARK_NAMES) == 33 == len(set(LANDMARK_NAMES))
    joined = {name for bone in BONES for name in bone}
    assert joined == set(LANDMARK_NAMES)
