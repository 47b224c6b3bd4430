"""BlazePose's landmark stage (MediaPipe's ``pose_landmark_full``): 33 body landmarks of one
person, from a 256x256 crop of the image rotated so the person stands upright in it.

The crop (MediaPipe's region of interest for a detection) is a square centred on the detector's
mid-hip point, 2.5 times the distance from there to the full-body point on a side, rotated so
that the mid-hip → full-body direction points up. Each person's crop is one affine warp of the
image; the people of an image go through the network as one batch.

The network answers 39 x (x, y, z, visibility logit, presence logit) in crop pixels (the 33
body landmarks, then 6 MediaPipe uses only to track between video frames) and a pose presence
score in 0..1, which is the check that the detector's candidate is a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from argus.tasks.people.search import Candidate

CROP_SIZE = 256
# The region's side over twice the mid-hip → full-body distance (MediaPipe's scale_x/_y).
ROI_SCALE = 1.25
LANDMARK_NAMES = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky",
    "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
_INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@dataclass(frozen=True)
class Region:
    """A rotated square of the image: centre, side (image pixels), angle (radians; 0 when the
    person stands upright, positive clockwise on screen)."""

    cx: float
    cy: float
    side: float
    angle: float

    def crop_to_image(self) -> np.ndarray:
        """2x3 affine: crop coordinates (0..256, pixel edges at integers) → image coordinates."""
        k = self.side / CROP_SIZE
        cos, sin = np.cos(self.angle) * k, np.sin(self.angle) * k
        half = CROP_SIZE / 2
        return np.array(
            [
                [cos, -sin, self.cx - cos * half + sin * half],
                [sin, cos, self.cy - sin * half - cos * half],
            ]
        )


def region(candidate: Candidate) -> Region:
    """MediaPipe's region for a detection: centred on the mid-hip point, rotated so the
    full-body point is straight above it, 2 x 1.25 x their distance on a side."""
    hip, top = candidate.keypoints[0], candidate.keypoints[1]
    dx, dy = float(top[0] - hip[0]), float(top[1] - hip[1])
    angle = np.pi / 2 - np.arctan2(-dy, dx)
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    side = 2.0 * np.hypot(dx, dy) * ROI_SCALE
    return Region(float(hip[0]), float(hip[1]), max(float(side), 1.0), float(angle))


def crop(rgb: np.ndarray, where: Region, out: np.ndarray) -> None:
    """Write the region of ``rgb`` into ``out`` (256x256x3 float32, RGB in 0..1, black past
    the image's edges): one bilinear affine warp."""
    matrix = where.crop_to_image()
    # cv2 indexes pixel centres at integers: shift both sides by half a pixel.
    matrix[:, 2] += matrix[:, :2] @ (0.5, 0.5) - 0.5
    warped = cv2.warpAffine(
        rgb, matrix, (CROP_SIZE, CROP_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )  # fmt: skip
    np.multiply(warped, 1.0 / 255.0, out=out, casting="unsafe")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def landmarks_in_image(raw: np.ndarray, where: Region) -> np.ndarray:
    """One person's ``[195]`` output → ``[33, 5]``: x, y in image pixels, z (depth from the
    hips, in image pixels; negative is nearer the camera), visibility and presence in 0..1."""
    values = np.asarray(raw, dtype=np.float64).reshape(-1, 5)[: len(LANDMARK_NAMES)]
    out = np.empty_like(values)
    matrix = where.crop_to_image()
    out[:, :2] = values[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out[:, 2] = values[:, 2] * where.side / CROP_SIZE
    out[:, 3:] = sigmoid(values[:, 3:])
    return out


def visible_box(
    points: np.ndarray, min_visibility: float, height: float, width: float
) -> list[float] | None:
    """The box around the landmarks seen in the image (visibility and presence at least
    ``min_visibility``) and the top of the head, which no landmark marks (twice the mouth to
    eyes distance beyond the eyes, when the face is seen), widened by a fifth of the shoulder
    width (at least 4% of the box) for the flesh around the joints; clipped to the image.
    None with fewer than 3 landmarks seen."""
    mask = (points[:, 3] >= min_visibility) & (points[:, 4] >= min_visibility)
    if mask.sum() < 3:
        return None
    seen = [points[mask, :2]]
    face = [_INDEX[n] for n in ("left_eye", "right_eye", "mouth_left", "mouth_right")]
    if mask[face].all():
        eyes = points[face[:2], :2].mean(axis=0)
        mouth = points[face[2:], :2].mean(axis=0)
        seen.append((eyes + 2.0 * (eyes - mouth))[None])
    xy = np.concatenate(seen)
    x1, y1 = xy.min(axis=0)
    x2, y2 = xy.max(axis=0)
    # Landmarks are joint centres: the body reaches past them by about a limb's half width.
    pad = 0.04 * max(float(x2 - x1), float(y2 - y1))
    shoulders = [_INDEX["left_shoulder"], _INDEX["right_shoulder"]]
    if mask[shoulders].all():
        across = points[shoulders[0], :2] - points[shoulders[1], :2]
        pad = max(pad, 0.2 * float(np.hypot(*across)))
    return [
        round(float(max(0.0, x1 - pad)), 2),
        round(float(max(0.0, y1 - pad)), 2),
        round(float(min(width, x2 + pad)), 2),
        round(float(min(height, y2 + pad)), 2),
    ]
