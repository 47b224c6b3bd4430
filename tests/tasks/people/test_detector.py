"""The person detector's decoding: anchors, weighted NMS, the torso check."""

from __future__ import annotations

import numpy as np
import pytest

from argus.tasks.people.detector import anchors, plain_nms, plausible, weighted_nms


def test_anchor_layout_matches_the_outputs() -> None:
    assert anchors().shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 2) == (2254, 2)
    # Any multiple of 32: each grid row by row (x fastest), a cell's anchors together.
    centres = anchors(64, 96)
    assert centres.shape == (8 * 12 * 2 + 4 * 6 * 2 + 2 * 3 * 6, 2)
    assert centres[:4].tolist() == [[4.0, 4.0], [4.0, 4.0], [12.0, 4.0], [12.0, 4.0]]
    assert centres[8 * 12 * 2 - 1].tolist() == [92.0, 60.0]


def test_an_implausibly_long_torso_is_not_a_person() -> None:
    face = np.array([100.0, 100.0, 200.0, 200.0])
    points = np.array([[150.0, 450.0], [150.0, 0.0], [150.0, 220.0], [150.0, 50.0]])
    assert plausible(face, points, 5.0)
    points[0] = [150.0, 900.0]  # the hip 6.8 face widths below the shoulder
    assert not plausible(face, points, 5.0)


def test_weighted_nms_merges_overlapping_candidates() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float64)
    keypoints = np.zeros((3, 4, 2))
    keypoints[1] += 4.0
    kept = weighted_nms(boxes, keypoints, np.array([0.9, 0.3, 0.6]), 0.3)
    assert len(kept) == 2
    box, points, score = kept[0]
    assert score == 0.9
    assert box[0] == pytest.approx(0.25) and points[0, 0] == pytest.approx(1.0)
    assert kept[1][2] == 0.6


def test_plain_nms_keeps_the_best_of_overlapping_boxes_as_they_are() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float64)
    assert plain_nms(boxes, np.array([0.3, 0.9, 0.6]), 0.3) == [1, 2]
