"""Face alignment: map five landmarks onto a canonical template with one similarity transform.

The template is the one ArcFace/InsightFace crops are trained on (112x112, eyes level at
y ~ 51.6). Other crop sizes scale it uniformly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from argus.errors import BadInput

__all__ = ["ARCFACE_112", "align_face", "face_template", "similarity_transform"]

Array = np.ndarray[Any, Any]

# Left eye, right eye, nose tip, left mouth corner, right mouth corner, for a 112x112 crop.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_112.setflags(write=False)


def face_template(size: int = 112) -> Array:
    """The five-point template for a ``size`` x ``size`` crop (ArcFace's, scaled)."""
    if size <= 0:
        raise BadInput(f"aligned face size must be positive, not {size}")
    return ARCFACE_112 * (size / 112.0)


def similarity_transform(src: Array, dst: Array) -> Array:
    """The 2x3 rotation + uniform scale + translation that best maps ``src`` onto ``dst``.

    Least squares over the point pairs (Umeyama 1991), with the reflection excluded, so
    ``dst ~ M[:, :2] @ p + M[:, 2]`` for each source point ``p``.
    """
    src = _points(src, "src")
    dst = _points(dst, "dst")
    if src.shape != dst.shape:
        raise BadInput(
            f"similarity_transform needs matching point sets, got {src.shape} and {dst.shape}"
        )
    if len(src) < 2:
        raise BadInput("similarity_transform needs at least two point pairs")
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = float((src_c**2).sum() / len(src))
    if src_var <= 1e-12:
        raise BadInput("similarity_transform: the source points all coincide")
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    # Flip the weakest axis if the best orthogonal map would be a reflection.
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum() / src_var)
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(rgb: Array, landmarks: Array | Sequence[Sequence[float]], size: int = 112) -> Array:
    """A ``size`` x ``size`` crop of the face whose five landmarks are given, warped upright.

    ``landmarks`` are in the order of :class:`argus.tasks.faces.Face` (eyes, nose, mouth corners).
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim not in (2, 3):
        raise BadInput("align_face needs an HxW or HxWxC numpy image")
    points = _points(landmarks, "landmarks")
    if points.shape != (5, 2):
        raise BadInput(
            f"align_face needs five (x, y) landmarks, not an array of shape {points.shape}"
        )
    matrix = similarity_transform(points, face_template(size))
    return cv2.warpAffine(
        rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def _points(points: Any, name: str) -> Array:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise BadInput(
            f"{name} must be a list of (x, y) points, not an array of shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise BadInput(f"{name} must be finite numbers")
    return array
