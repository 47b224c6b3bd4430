"""Geometry of the face mesh: the crops MediaPipe's models expect, head pose, eye and mouth
measures, gaze, and mapping an answer from crop pixels back to the image.

Coordinates are pixels with x to the right and y down. The mesh's z is depth in roughly the
units of x (smaller is nearer the camera). Point indices are those of MediaPipe's 468-point
topology; "left" and "right" below are as seen in the image (the person's right eye is on the
image's left), never the person's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

MESH_SIZE = 192
EYE_SIZE = 64
# MediaPipe enlarges the face detector's box by this much for the mesh, and an eye's corner
# to corner distance by EYE_SCALE for the iris model.
FACE_SCALE = 1.5
EYE_SCALE = 2.3

# Mesh points (MediaPipe's topology). Each eye: outer corner, inner corner, upper lid, lower lid.
EYES = {"left": (33, 133, 159, 145), "right": (263, 362, 386, 374)}
# Pairs of points mirrored across the face (image-left first): eye corners, mouth corners,
# cheeks. Their mean difference is the face's left-to-right axis.
MIRRORED = ((33, 263), (133, 362), (61, 291), (234, 454), (70, 300), (105, 334))
FOREHEAD, CHIN = 10, 152
MOUTH_LEFT, MOUTH_RIGHT, LIP_UPPER, LIP_LOWER = 61, 291, 13, 14
LIP_TOP = 0  # the middle of the upper lip's top edge


def square_matrix(centre: Sequence[float] | Array, side: float, angle: float, size: int) -> Array:
    """The 2x3 map from image pixels into a ``size`` x ``size`` crop of the square of ``side``
    pixels centred on ``centre``, turned by ``angle`` radians (the square's x axis in the
    image), so the square's content comes out upright."""
    scale = size / max(side, 1e-6)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    cx, cy = float(centre[0]), float(centre[1])
    # Rows: the crop's x and y axes read off the image, then shifted so the centre lands
    # in the middle of the crop.
    matrix = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
    matrix[:, 2] = np.array([size / 2, size / 2]) - matrix[:, :2] @ np.array([cx, cy])
    return matrix


def invert(matrix: Array) -> Array:
    """The inverse of a 2x3 affine map."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(matrix: Array, points: Array) -> Array:
    """``[..., 2]`` points through a 2x3 affine map."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def face_crop_matrix(
    box: Sequence[float], landmarks: Sequence[Sequence[float]], scale: float = FACE_SCALE,
    size: int = MESH_SIZE,
) -> Array:
    """Image → mesh crop for a face found by ``faces`` (box and five landmarks: eyes, nose,
    mouth corners): a square ``scale`` times the box's longer side, around the box's centre,
    turned so the eyes are level, as MediaPipe builds its face region from a detection."""
    x1, y1, x2, y2 = (float(v) for v in box)
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    angle = math.atan2(float(ry) - float(ly), float(rx) - float(lx))
    side = max(x2 - x1, y2 - y1) * scale
    return square_matrix(((x1 + x2) / 2, (y1 + y2) / 2), side, angle, size)


def eye_crop_matrix(mesh: Array, eye: str, size: int = EYE_SIZE) -> Array:
    """Mesh crop → eye crop for the iris model: a square ``EYE_SCALE`` times the eye's corner
    to corner distance, turned along that line; the image-right eye is mirrored, since the
    model was trained on the other one."""
    outer, inner = mesh[EYES[eye][0], :2], mesh[EYES[eye][1], :2]
    left, right = (outer, inner) if eye == "left" else (inner, outer)
    angle = math.atan2(right[1] - left[1], right[0] - left[0])
    side = float(np.hypot(*(right - left))) * EYE_SCALE
    matrix = square_matrix((left + right) / 2, side, angle, size)
    if eye == "right":
        matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack(
            [matrix, [0.0, 0.0, 1.0]]
        )
    return matrix


@dataclass(frozen=True)
class Pose:
    """The head's axes in the crop (unit 3-vectors) and its angles in degrees.

    yaw > 0: the face turns towards the image's right; pitch > 0: it tilts up; roll > 0: it
    leans clockwise in the image."""

    right: Array
    down: Array
    forward: Array
    """Out of the face, towards what it faces (towards the camera for a frontal face)."""
    yaw: float
    pitch: float
    roll: float


def angles(direction: Array) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a 3-D direction (x right, y down, z away from the camera):
    (0, 0) points at the camera."""
    x, y, z = (float(v) for v in direction)
    return math.degrees(math.atan2(x, -z)), math.degrees(math.atan2(-y, math.hypot(x, z)))


def head_pose(mesh: Array, pitch_offset: float = 0.0) -> Pose:
    """The head's rotation from the mesh: left-to-right is the mean of mirrored point pairs,
    down is forehead to chin made square to it, forward their cross product. ``pitch_offset``
    (degrees) is what this reads on a face looking level at the camera."""
    pts = np.asarray(mesh, dtype=np.float64)
    pairs = np.asarray(MIRRORED)
    across = (pts[pairs[:, 1]] - pts[pairs[:, 0]]).sum(axis=0)
    right = across / max(float(np.linalg.norm(across)), 1e-9)
    down = pts[CHIN] - pts[FOREHEAD]
    down = down - (down @ right) * right
    down /= max(np.linalg.norm(down), 1e-9)
    if pitch_offset:
        # Turn the measured axes back by the offset about the face's own left-right axis.
        t = math.radians(pitch_offset)
        back = np.cross(right, down)
        down = math.cos(t) * down + math.sin(t) * back
    forward = -np.cross(right, down)  # x × y points away from the camera; the face looks back
    yaw, pitch = angles(forward)
    roll = math.degrees(math.atan2(right[1], right[0]))
    return Pose(right, down, forward, yaw, pitch, roll)


def eye_openness(mesh: Array, eye: str) -> float:
    """Lid to lid over corner to corner (about 0.3 open, under 0.1 shut)."""
    outer, inner, upper, lower = (mesh[i, :2] for i in EYES[eye])
    width = float(np.hypot(*(inner - outer)))
    return float(np.hypot(*(upper - lower))) / max(width, 1e-6)


def mouth_measures(mesh: Array, pose: Pose) -> tuple[float, float, float]:
    """(opening, width, corner drop) of the mouth: inner-lip gap over mouth width; width over
    the distance between the eyes' centres; how far the corners sit below the top of the upper
    lip, along the face's own down, over mouth width (small in a smile, large in a neutral or
    speaking mouth)."""
    pts = np.asarray(mesh, dtype=np.float64)
    width = max(float(np.linalg.norm(pts[MOUTH_RIGHT] - pts[MOUTH_LEFT])), 1e-6)
    gap = float(np.linalg.norm(pts[LIP_LOWER] - pts[LIP_UPPER]))
    eyes = [(pts[EYES[e][0]] + pts[EYES[e][1]]) / 2 for e in ("left", "right")]
    eye_distance = max(float(np.linalg.norm(eyes[1] - eyes[0])), 1e-6)
    corners = (pts[MOUTH_LEFT] + pts[MOUTH_RIGHT]) / 2
    drop = float((corners - pts[LIP_TOP]) @ pose.down) / width
    return gap / width, width / eye_distance, drop


def iris_offset(mesh: Array, iris_centre: Array, eye: str, pose: Pose) -> tuple[float, float]:
    """Where the iris sits in the eye: (right, down) offsets from the middle of the corners,
    along the face's axes, in eye widths."""
    outer, inner = mesh[EYES[eye][0], :2], mesh[EYES[eye][1], :2]
    width = max(float(np.hypot(*(inner - outer))), 1e-6)
    offset = np.asarray(iris_centre[:2], dtype=np.float64) - (outer + inner) / 2
    return float(offset @ pose.right[:2]) / width, float(offset @ pose.down[:2]) / width


# An eye is ~28 mm corner to corner and turns about a centre ~12 mm behind the iris, so an
# iris offset of one eye width is asin(28/12) — past 90°: offsets are clipped to the sphere.
EYE_WIDTH_OVER_RADIUS = 28.0 / 12.0


def gaze_direction(pose: Pose, eye_right: float, eye_down: float) -> Array:
    """The 3-D direction the eyes look (x right, y down, z away from the camera): the head's
    forward turned by the eyes' rotation in the head."""
    yaw = math.asin(max(-1.0, min(1.0, eye_right * EYE_WIDTH_OVER_RADIUS)))
    pitch = math.asin(max(-1.0, min(1.0, -eye_down * EYE_WIDTH_OVER_RADIUS)))
    local = (math.sin(yaw) * math.cos(pitch), -math.sin(pitch), math.cos(yaw) * math.cos(pitch))
    out = local[0] * pose.right + local[1] * pose.down + local[2] * pose.forward
    return out / max(float(np.linalg.norm(out)), 1e-9)


AT_CAMERA = "at the camera"


def gaze_word(direction: Sequence[float] | Array) -> str:
    """The larger of the 2-D ray's image-axis parts names where it goes: left, right, up or
    down as seen in the image."""
    dx, dy = float(direction[0]), float(direction[1])
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def map_attributes(result: dict[str, Any], matrix: Array) -> dict[str, Any]:
    """A face-attributes answer from crop pixels into the image, through ``matrix`` (crop →
    image, 2x3): points and boxes move, directions turn, roll gains the crop's own turn and a
    gaze word other than "at the camera" (which the angles decide) is named again in the
    image's axes."""
    out = dict(result)
    linear = matrix[:, :2]
    turn = math.degrees(math.atan2(linear[1, 0], linear[0, 0]))
    for key in ("mesh", "iris"):
        if key in out:
            pts = np.asarray(out[key], dtype=np.float64)
            xy = apply(matrix, pts[..., :2])
            depth = pts[..., 2:] * math.hypot(linear[0, 0], linear[1, 0])
            out[key] = rounded(np.concatenate([xy, depth], axis=-1))
    if "box" in out:
        x1, y1, x2, y2 = out["box"]
        corners = apply(matrix, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]))
        out["box"] = rounded(np.concatenate([corners.min(axis=0), corners.max(axis=0)]))
    if "head" in out:
        head = dict(out["head"])
        head["roll"] = round((head["roll"] + turn + 180.0) % 360.0 - 180.0, 2)
        out["head"] = head
    if "gaze" in out:
        gaze = dict(out["gaze"])
        origin = apply(matrix, np.asarray(gaze["origin"], dtype=np.float64))
        end = apply(matrix, np.asarray(gaze["end"], dtype=np.float64))
        direction = linear @ np.asarray(gaze["direction"], dtype=np.float64)
        direction /= max(float(np.linalg.norm(direction)), 1e-9)
        gaze.update(
            origin=rounded(origin),
            end=rounded(end),
            direction=[round(float(v), 4) for v in direction],
            word=gaze["word"] if gaze["word"] == AT_CAMERA else gaze_word(direction),
        )
        out["gaze"] = gaze
    return out


def rounded(values: Array) -> Any:
    """Pixel values as JSON lists, to a hundredth of a pixel."""
    return np.round(np.asarray(values, dtype=np.float64), 2).tolist()
