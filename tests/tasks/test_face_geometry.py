"""The face mesh's geometry: crop maps, the iris model's eye crops, head pose from a real mesh
turned by known angles, gaze directions and words, and answers mapped back to the image."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from argus.images import Limits, decode
from argus.tasks import face_geometry as geo
from argus.tasks import load_task_model
from tests.conftest import pulled_package


def test_a_square_crop_map_and_its_inverse() -> None:
    matrix = geo.square_matrix((100.0, 50.0), 40.0, math.radians(30), 64)
    assert np.allclose(geo.apply(matrix, np.array([100.0, 50.0])), [32, 32])
    # A point along the square's turned x axis lands on the crop's x axis, scaled 64/40.
    along = np.array([100 + 10 * math.cos(math.radians(30)), 50 + 10 * math.sin(math.radians(30))])
    assert np.allclose(geo.apply(matrix, along), [32 + 16, 32])
    back = geo.invert(matrix)
    points = np.array([[0.0, 0.0], [63.0, 10.0], [20.5, 60.0]])
    assert np.allclose(geo.apply(matrix, geo.apply(back, points)), points)


@pytest.fixture(scope="module")
def mesh(pulled_home: Path, photos: dict[str, bytes]) -> np.ndarray:
    """The face mesh model's 468 points on the astronaut's mesh crop (192 px)."""
    model = load_task_model(pulled_package(pulled_home, "face-mesh"), 1)
    rgb = decode(photos["astronaut"], Limits()).rgb
    # MTCNN's box and eyes on this photo (tests/tasks/faces check them); a fixed crop here.
    matrix = geo.face_crop_matrix((180.8, 61.4, 268.4, 172.3), ((204.7, 101.0), (247.2, 103.1)))
    crop = cv2.warpAffine(rgb, matrix, (192, 192), flags=cv2.INTER_LINEAR)
    (raw,) = model.infer([crop.astype(np.float32) / 255.0])
    points, score = raw.mesh, raw.score
    assert score > 0.9
    return np.asarray(points)


def turned(points: np.ndarray, yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """The mesh turned about its centroid: ``yaw`` degrees about the image's vertical axis
    (towards the image's right), then ``pitch`` about its horizontal axis (upwards)."""
    y, p = math.radians(yaw), math.radians(pitch)
    # x right, y down, z away: turning the face's front (-z) towards +x is a turn about y.
    about_y = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    about_x = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    centre = points.mean(axis=0)
    return (points - centre) @ (about_x @ about_y).T + centre


@pytest.mark.parametrize(("yaw", "pitch"), [(20, 0), (-30, 0), (0, 15), (0, -20), (25, 10)])
def test_head_pose_follows_a_real_mesh_turned_by_known_angles(
    mesh: np.ndarray, yaw: float, pitch: float
) -> None:
    before = geo.head_pose(mesh)
    after = geo.head_pose(turned(mesh, yaw, pitch))
    assert after.yaw - before.yaw == pytest.approx(yaw, abs=2.5)
    assert after.pitch - before.pitch == pytest.approx(pitch, abs=2.5)


def test_roll_follows_the_mesh_turned_in_the_image(mesh: np.ndarray) -> None:
    before = geo.head_pose(mesh)
    t = math.radians(20)  # clockwise in the image (y down)
    centre = mesh[:, :2].mean(axis=0)
    spun = mesh.copy()
    spun[:, :2] = (mesh[:, :2] - centre) @ np.array([[math.cos(t), math.sin(t)],
                                                     [-math.sin(t), math.cos(t)]]) + centre
    assert geo.head_pose(spun).roll - before.roll == pytest.approx(20, abs=0.5)


def test_both_eye_crops_put_the_outer_corner_on_the_left(mesh: np.ndarray) -> None:
    for eye in ("left", "right"):
        matrix = geo.eye_crop_matrix(mesh, eye)
        outer, inner = (geo.apply(matrix, mesh[i, :2]) for i in geo.EYES[eye][:2])
        assert outer[0] < 32 < inner[0], eye
        assert abs(outer[1] - inner[1]) < 1e-6  # the corner line is level in the crop
        # Corner to corner is 1/EYE_SCALE of the crop.
        assert inner[0] - outer[0] == pytest.approx(64 / geo.EYE_SCALE)


def test_gaze_direction_and_words(mesh: np.ndarray) -> None:
    pose = geo.head_pose(mesh)
    ahead = geo.gaze_direction(pose, 0.0, 0.0)
    assert np.allclose(ahead, pose.forward)
    right = geo.angles(geo.gaze_direction(pose, 0.1, 0.0))
    assert right[0] - geo.angles(ahead)[0] == pytest.approx(
        math.degrees(math.asin(0.1 * geo.EYE_WIDTH_OVER_RADIUS)), abs=1.5)
    up = geo.angles(geo.gaze_direction(pose, 0.0, -0.1))
    assert up[1] > geo.angles(ahead)[1] + 10
    assert [geo.gaze_word(d) for d in ((1, 0.2), (-1, 0.5), (0.1, -1), (0.2, 1))] == [
        "right", "left", "up", "down"]


def test_an_answer_is_mapped_into_the_image() -> None:
    answer = {
        "box": [0.0, 0.0, 192.0, 192.0],
        "head": {"yaw": 20.0, "pitch": 0.0, "roll": 5.0},
        "gaze": {"yaw": 30.0, "pitch": 0.0, "origin": [96.0, 96.0], "end": [196.0, 96.0],
                 "direction": [1.0, 0.0], "word": "right"},
    }
    # The crop was cut turned 90° clockwise: its x axis is the image's down.
    matrix = geo.invert(geo.square_matrix((500.0, 300.0), 96.0, math.radians(90), 192))
    out = geo.map_attributes(answer, matrix)
    assert out["head"]["roll"] == pytest.approx(95.0) and out["head"]["yaw"] == 20.0
    assert out["gaze"]["origin"] == pytest.approx([500.0, 300.0])
    assert out["gaze"]["end"] == pytest.approx([500.0, 350.0])
    assert out["gaze"]["direction"] == pytest.approx([0.0, 1.0], abs=1e-4)
    assert out["gaze"]["word"] == "down"
    assert out["box"] == pytest.approx([452.0, 252.0, 548.0, 348.0])
    camera = {**answer, "gaze": {**answer["gaze"], "word": "at the camera"}}
    assert geo.map_attributes(camera, matrix)["gaze"]["word"] == "at the camera"


def test_a_pitch_offset_makes_that_pitch_level(mesh: np.ndarray) -> None:
    measured = geo.head_pose(mesh)
    levelled = geo.head_pose(mesh, pitch_offset=measured.pitch)
    assert levelled.pitch == pytest.approx(0.0, abs=0.5)
    assert levelled.yaw == pytest.approx(measured.yaw, abs=0.5)
    assert levelled.roll == pytest.approx(measured.roll, abs=0.5)
