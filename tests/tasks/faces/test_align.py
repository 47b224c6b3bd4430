"""Five-point similarity alignment onto the ArcFace template."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from argus.errors import BadInput
from argus.tasks.faces import ARCFACE_112, MTCNN, align_face, face_template, similarity_transform


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, float) @ matrix[:, :2].T + matrix[:, 2]


def rotation_degrees(matrix: np.ndarray) -> float:
    return math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))


def test_recovers_an_exact_similarity() -> None:
    angle, scale, shift = math.radians(-33.0), 1.7, np.array([12.5, -40.0])
    rot = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    src = np.random.default_rng(3).uniform(0, 200, size=(5, 2))
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    assert matrix.shape == (2, 3)
    assert np.allclose(matrix[:, :2], rot, atol=1e-9)
    assert np.allclose(matrix[:, 2], shift, atol=1e-7)


def test_least_squares_agrees_with_scikit_image() -> None:
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(11)
    src = rng.uniform(0, 100, size=(5, 2))
    dst = rng.uniform(0, 100, size=(5, 2))
    expected = SimilarityTransform.from_estimate(src, dst).params
    assert np.allclose(similarity_transform(src, dst), expected[:2], atol=1e-9)


def test_never_mirrors() -> None:
    src = np.array([[0, 0], [10, 0], [0, 5], [7, 9]], float)
    mirrored = src * [-1, 1]
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (np.zeros((5, 2)), ARCFACE_112),
        (np.ones((4, 2)), ARCFACE_112),
        (np.ones((1, 2)), np.ones((1, 2))),
        (np.ones((5, 3)), ARCFACE_112),
        (np.full((5, 2), np.nan), ARCFACE_112),
    ],
)
def test_bad_point_sets(src: np.ndarray, dst: np.ndarray) -> None:
    with pytest.raises(BadInput):
        similarity_transform(src, dst)


def test_template_scales_with_size() -> None:
    assert np.allclose(face_template(112), ARCFACE_112)
    assert np.allclose(face_template(224), 2 * ARCFACE_112)
    with pytest.raises(BadInput):
        face_template(0)
    assert not ARCFACE_112.flags.writeable


def test_upright_face_lands_on_the_template(detector: MTCNN, astronaut: np.ndarray) -> None:
    landmarks = np.array(detector.detect(astronaut)[0].landmarks)
    matrix = similarity_transform(landmarks, face_template(112))
    residual = np.linalg.norm(apply(matrix, landmarks) - face_template(112), axis=1)
    # Eyes almost exactly; her smile is wider than the template's mouth.
    assert residual[:2].max() < 3.5
    assert math.sqrt((residual**2).mean()) < 6.0
    assert abs(rotation_degrees(matrix)) < 5.0
    crop = align_face(astronaut, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8


def eye_tilt(detector: MTCNN, crop: np.ndarray) -> float:
    """Re-detect the face in an aligned crop; vertical offset between its eyes, in pixels."""
    faces = detector.detect(crop)
    assert len(faces) == 1
    (_, left_y), (_, right_y) = faces[0].landmarks[:2]
    return right_y - left_y


def test_rotated_face_comes_out_upright(detector: MTCNN, astronaut: np.ndarray) -> None:
    rotated = np.asarray(Image.fromarray(astronaut).rotate(20, expand=True))
    (face,) = detector.detect(rotated)
    (lx, ly), (rx, ry) = face.landmarks[:2]
    assert math.degrees(math.atan2(ly - ry, rx - lx)) > 15, "the input face is tilted"
    crop = align_face(rotated, face.landmarks)
    assert abs(eye_tilt(detector, crop)) < 2.0
    # The same face upright gives nearly the same aligned crop.
    upright = align_face(astronaut, detector.detect(astronaut)[0].landmarks)
    assert np.abs(crop.astype(float) - upright).mean() < 15


def test_other_sizes(detector: MTCNN, astronaut: np.ndarray) -> None:
    landmarks = detector.detect(astronaut)[0].landmarks
    crop = align_face(astronaut, landmarks, size=224)
    assert crop.shape == (224, 224, 3)
    small = align_face(astronaut, landmarks, size=112)
    halved = np.asarray(Image.fromarray(crop).resize((112, 112), Image.Resampling.BOX))
    assert np.abs(halved.astype(float) - small).mean() < 6


def test_align_refuses_bad_landmarks(astronaut: np.ndarray) -> None:
    with pytest.raises(BadInput, match="five"):
        align_face(astronaut, [(1.0, 2.0)] * 4)
    with pytest.raises(BadInput):
        align_face("not an image", ARCFACE_112)  # type: ignore[arg-type]
