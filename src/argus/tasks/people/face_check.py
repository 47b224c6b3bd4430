"""The third check of a person: is there a face where the skeleton puts one?

The person detector proposes a face-ish box, and the landmark network fits a body to whatever
it is shown and calls it present with high confidence: turned a quarter or half a circle,
scikit-learn's china and flower and scikit-image's coffee each gave a "person" with presence
0.85-1.0. The detector is a face detector at heart, so the check asks a face detector:
MediaPipe's BlazeFace (short range, 128x128, the same wheel), shown the face as the skeleton
places it, turned upright by the eyes and mouth and scaled so the face fills about a third of
the crop, as BlazeFace's short-range training faces do. Its best score among the anchors whose
box centre falls near the crop's centre is the face score.

BlazeFace answers, for 896 anchors (a 16x16 grid of stride 8 with 2 per cell, an 8x8 grid of
stride 16 with 6), 16 regression values (box centre offset and size, six face keypoints, in
input pixels) and one score logit.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np

FACE_INPUT = 128
# (stride, anchors per cell) of BlazeFace short range's two grids.
FACE_GRIDS = ((8, 2), (16, 6))
# Pose landmarks: the eyes (centres) and the corners of the mouth.
LEFT_EYE, RIGHT_EYE, MOUTH_LEFT, MOUTH_RIGHT = 2, 5, 9, 10
# The crop's side, in eye-to-mouth distances (a face about a third of the crop) or eye
# distances, whichever is larger (a face seen side-on has its eyes close together).
SIDE_PER_EYE_MOUTH = 4.0
SIDE_PER_EYES = 3.0
# A face counts when its box centre is within this fraction of the crop's side of the centre.
NEAR_CENTRE = 0.25


@cache
def face_anchors() -> np.ndarray:
    """``[896, 2]`` anchor centres in input pixels, in the model's output order."""
    centres = []
    for stride, per_cell in FACE_GRIDS:
        cells = FACE_INPUT // stride
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float64)
        grid = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres)


def face_crop(rgb: np.ndarray, points: np.ndarray, out: np.ndarray) -> None:
    """Write into ``out`` (``[128, 128, 3]`` float32, -1..1) the face the skeleton ``points``
    (``[33, >=2]`` in ``rgb``'s pixels) places: centred between eyes and mouth, turned so the
    eyes are above the mouth, scaled by the face's own size. Past the image's edge its last
    pixels are repeated (a face cut by the edge scores higher so than on black)."""
    eyes = (points[LEFT_EYE, :2] + points[RIGHT_EYE, :2]) / 2
    mouth = (points[MOUTH_LEFT, :2] + points[MOUTH_RIGHT, :2]) / 2
    up = eyes - mouth
    side = max(
        float(np.hypot(*up)) * SIDE_PER_EYE_MOUTH,
        float(np.hypot(*(points[LEFT_EYE, :2] - points[RIGHT_EYE, :2]))) * SIDE_PER_EYES,
        1.0,
    )
    centre = (eyes + mouth) / 2
    # The angle that turns the mouth-to-eyes direction to straight up on screen.
    angle = math.degrees(math.atan2(float(up[0]), -float(up[1])))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle,
                                     FACE_INPUT / side)
    matrix[:, 2] += (FACE_INPUT / 2 - centre[0], FACE_INPUT / 2 - centre[1])
    face = cv2.warpAffine(rgb, matrix, (FACE_INPUT, FACE_INPUT), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    np.multiply(face, 1.0 / 127.5, out=out, casting="unsafe")
    out -= 1.0


def face_scores(regressors: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``[N]``: each crop's best face probability among the anchors whose box centre lies
    within :data:`NEAR_CENTRE` of the crop's side from its centre (0 when none does)."""
    centres = face_anchors()[None] + regressors[..., :2]  # [N, 896, 2]
    offset = np.abs(centres - FACE_INPUT / 2).max(axis=-1)
    near = offset <= NEAR_CENTRE * FACE_INPUT
    raw = np.clip(logits.reshape(len(logits), -1).astype(np.float64), -100.0, 100.0)
    probs = 1.0 / (1.0 + np.exp(-raw))
    return np.where(near, probs, 0.0).max(axis=1, initial=0.0)
