"""Pictures of answers: boxes, scores, landmarks and labels drawn on the image."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageOps

FACE_COLOUR = (0, 255, 0)
OBJECT_COLOUR = (255, 80, 0)
PERSON_COLOUR = (0, 160, 255)
# A person's skeleton: bones of the left side, the right side and the middle in three colours.
LEFT_COLOUR, RIGHT_COLOUR = (255, 140, 0), (0, 220, 120)
# Landmarks less visible than this are not drawn, nor the bones that join them.
SEEN = 0.5
# A person's skeleton: which of the people task's 33 landmarks (by name) a drawing joins: face,
# arms and hands, torso, legs. web/static/js/answer.js draws the same bones.
BONES: tuple[tuple[str, str], ...] = (
    ("nose", "left_eye_inner"), ("left_eye_inner", "left_eye"), ("left_eye", "left_eye_outer"),
    ("left_eye_outer", "left_ear"), ("nose", "right_eye_inner"),
    ("right_eye_inner", "right_eye"), ("right_eye", "right_eye_outer"),
    ("right_eye_outer", "right_ear"), ("mouth_left", "mouth_right"),
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"), ("left_wrist", "left_pinky"), ("left_wrist", "left_index"),
    ("left_wrist", "left_thumb"), ("left_pinky", "left_index"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("right_wrist", "right_pinky"), ("right_wrist", "right_index"),
    ("right_wrist", "right_thumb"), ("right_pinky", "right_index"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_heel"),
    ("left_heel", "left_foot_index"), ("left_ankle", "left_foot_index"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_heel"),
    ("right_heel", "right_foot_index"), ("right_ankle", "right_foot_index"),
)  # fmt: skip
# Left eye, right eye, nose, left mouth corner, right mouth corner.
LANDMARK_COLOURS = [(0, 200, 255), (0, 120, 255), (255, 220, 0), (255, 60, 160), (200, 0, 255)]


def draw_answer(data: bytes, body: Mapping[str, Any]) -> Image.Image:
    """The image (EXIF-oriented, RGB) with every box, face and top label of ``body`` (an
    answer's task results: ``faces``, ``objects``, ``people``, ``labels``) drawn."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))) or Image.open(io.BytesIO(data))
    return draw_on(img, body)


def draw_on(image: Image.Image, body: Mapping[str, Any]) -> Image.Image:
    """A new RGB image: ``image`` with the faces, objects and top labels of an answer's body
    drawn on it. Line widths follow the image size so the marks stay visible on large photos."""
    img = image.convert("RGB")  # always a copy, so the caller's image stays untouched
    draw = ImageDraw.Draw(img)
    width = max(2, round(min(img.size) / 200))
    for face in body.get("faces", []) or []:
        x1, y1, x2, y2 = face["box"]
        draw.rectangle((x1, y1, x2, y2), outline=FACE_COLOUR, width=width)
        draw.text((x1 + 2, max(0, y1 - 12)), f"{face['score']:.2f}", fill=FACE_COLOUR)
        r = max(2, width + 1)
        for (x, y), colour in zip(face["landmarks"], LANDMARK_COLOURS, strict=False):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    for det in body.get("objects", []) or []:
        x1, y1, x2, y2 = det["box"]
        draw.rectangle((x1, y1, x2, y2), outline=OBJECT_COLOUR, width=width)
        draw.text((x1 + 2, y1 + 2), f"{det['label']} {det['score']:.2f}", fill=OBJECT_COLOUR)
    for person in body.get("people", []) or []:
        draw_person(draw, person, width)
    labels = body.get("labels") or []
    for i, item in enumerate(labels[:3]):
        draw.text((6, 6 + 12 * i), f"{item['label']} {item['score']:.2f}", fill=(255, 255, 255))
    return img


def draw_person(draw: ImageDraw.ImageDraw, person: Mapping[str, Any], width: int) -> None:
    """A person's box, score and skeleton: the bones between landmarks both seen (visibility
    and presence at least :data:`SEEN`), the left side orange, the right green."""
    x1, y1, x2, y2 = person["box"]
    draw.rectangle((x1, y1, x2, y2), outline=PERSON_COLOUR, width=width)
    draw.text((x1 + 2, y1 + 2), f"person {person['score']:.2f}", fill=PERSON_COLOUR)
    seen = {
        p["name"]: (p["x"], p["y"])
        for p in person.get("pose", []) or []
        if p["visibility"] >= SEEN and p["presence"] >= SEEN
    }

    def colour(name: str) -> tuple[int, int, int]:
        return LEFT_COLOUR if name.startswith("left") else (
            RIGHT_COLOUR if name.startswith("right") else PERSON_COLOUR)

    for a, b in BONES:
        if a in seen and b in seen:
            side = colour(a) if colour(a) == colour(b) else PERSON_COLOUR
            draw.line((seen[a], seen[b]), fill=side, width=width)
    r = max(2, width)
    for name, (x, y) in seen.items():
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour(name), outline=(0, 0, 0))
