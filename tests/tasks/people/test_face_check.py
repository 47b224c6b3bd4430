"""The face check: the crop is the face the skeleton places, upright, and only a face near the
crop's centre counts."""

from __future__ import annotations

import numpy as np
import pytest

from argus.tasks.people.face_check import (
    FACE_INPUT,
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE,
    face_anchors,
    face_crop,
    face_scores,
)
from argus.tasks.people.model import PeopleModel
from tests.tasks.people.conftest import decoded

skimage_data = pytest.importorskip("skimage.data")


def test_the_anchors_are_blazefaces_896_in_output_order() -> None:
    anchors = face_anchors()
    assert anchors.shape == (896, 2)
    # 16x16 cells of stride 8 with two anchors each, then 8x8 of stride 16 with six.
    assert anchors[0].tolist() == anchors[1].tolist() == [4.0, 4.0]
    assert anchors[2].tolist() == [12.0, 4.0]
    assert anchors[512].tolist() == anchors[517].tolist() == [8.0, 8.0]
    assert anchors[-1].tolist() == [120.0, 120.0]


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_the_crop_turns_the_face_upright(turn: int) -> None:
    """Eyes marked red and mouth blue, the face turned any way: in the crop the red is above
    the blue, both near the middle column."""
    rgb = np.zeros((400, 400, 3), np.uint8)
    points = np.zeros((33, 2))
    points[LEFT_EYE], points[RIGHT_EYE] = (180, 180), (220, 180)
    points[MOUTH_LEFT], points[MOUTH_RIGHT] = (190, 220), (210, 220)
    for i, colour in ((LEFT_EYE, (255, 0, 0)), (RIGHT_EYE, (255, 0, 0)),
                      (MOUTH_LEFT, (0, 0, 255)), (MOUTH_RIGHT, (0, 0, 255))):
        x, y = points[i].astype(int)
        rgb[y - 3 : y + 4, x - 3 : x + 4] = colour
    # Turn the image (and the points) a quarter anticlockwise ``turn // 90`` times.
    for _ in range(turn // 90):
        rgb = np.ascontiguousarray(np.rot90(rgb))
        points = np.stack([points[:, 1], 400 - 1 - points[:, 0]], axis=1)
    out = np.empty((FACE_INPUT, FACE_INPUT, 3), np.float32)
    face_crop(rgb, points, out)
    red = np.argwhere(out[..., 0] > 0.0)
    blue = np.argwhere(out[..., 2] > 0.0)
    assert red[:, 0].mean() < FACE_INPUT / 2 < blue[:, 0].mean()
    for marks in (red, blue):
        assert abs(marks[:, 1].mean() - FACE_INPUT / 2) < 4
    # Eyes 40 px apart and eyes to mouth 40 px: the crop is 160 px of the image, scale 0.8.
    assert abs(np.ptp(red[:, 1]) - (40 + 6) * 0.8) < 4


def test_only_a_face_near_the_centre_counts() -> None:
    regressors = np.zeros((2, 896, 16), np.float32)
    logits = np.full((2, 896, 1), -10.0, np.float32)
    centre = int(np.argmin(np.abs(face_anchors() - FACE_INPUT / 2).max(axis=1)))
    logits[0, centre] = 4.0  # a face at the centre
    logits[1, 0] = 4.0  # a face in the top-left corner only
    scores = face_scores(regressors, logits)
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert scores[1] < 1e-3
    # The box's offset moves it: the corner anchor's face predicted at the centre counts.
    regressors[1, 0, :2] = FACE_INPUT / 2 - face_anchors()[0]
    assert face_scores(regressors, logits)[1] == pytest.approx(scores[0])


def test_the_astronaut_has_a_face_and_coffee_turned_has_none(people_model: PeopleModel) -> None:
    """The network itself: the astronaut's face scores high; the candidate the detector and the
    landmark network make of coffee turned half a circle scores low."""
    found = people_model.look(people_model.prepare(decoded(skimage_data.astronaut()), {}))
    assert found.face is not None and max(found.face) > 0.8
    coffee = np.ascontiguousarray(skimage_data.coffee()[::-1, ::-1])
    found = people_model.look(people_model.prepare(decoded(coffee), {}))
    kept = found.presence >= people_model.options.min_presence
    assert kept.any(), "the landmark network no longer proposes coffee turned: test moot"
    assert found.face is not None and found.face[kept].max() < people_model.options.min_face_score
