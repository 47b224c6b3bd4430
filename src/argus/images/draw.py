"""Pictures of answers: boxes, scores, landmarks and labels drawn on the image."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageOps

FACE_COLOUR = (0, 255, 0)
OBJECT_COLOUR = (255, 80, 0)
PERSON_COLOUR = (0, 160, 255)
# The people task's keypoints, joined as the body's axis: hip to shoulder to upper-body point.
PERSON_AXIS = ("mid_hip", "mid_shoulder", "upper_body")
# Left eye, right eye, nose, left mouth corner, right mouth corner.
LANDMARK_COLOURS = [(0, 200, 255), (0, 120, 255), (255, 220, 0), (255, 60, 160), (200, 0, 255)]


def draw_answer(data: bytes, body: Mapping[str, Any]) -> Image.Image:
    """The image (EXIF-oriented, RGB) with every box, face and top label of ``body`` (an
    answer's task results: ``faces``, ``objects``, ``people``, ``labels``) drawn."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))) or Image.open(io.BytesIO(data))
    return draw_on(img, body)


NAME_COLOUR = (255, 255, 0)


def _draw_names(draw: ImageDraw.ImageDraw, faces: list[Mapping[str, Any]]) -> None:
    """Under each face a ``who`` answer named: the person and similarity, or unknown."""
    for face in faces:
        if "similarity" not in face:
            continue  # not a who answer
        x1, _, _, y2 = face["box"]
        sim = face.get("similarity")
        text = face.get("name") or "unknown"
        if sim is not None:
            text += f" {sim:.2f}"
        draw.text((x1 + 2, y2 + 2), text, fill=NAME_COLOUR if face.get("name") else
                  (200, 200, 200))


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
        x1, y1, x2, y2 = person["box"]
        draw.rectangle((x1, y1, x2, y2), outline=PERSON_COLOUR, width=width)
        draw.text((x1 + 2, y1 + 2), f"person {person['score']:.2f}", fill=PERSON_COLOUR)
        points = [tuple(person["keypoints"][k]) for k in PERSON_AXIS if k in person["keypoints"]]
        if len(points) > 1:
            draw.line(points, fill=PERSON_COLOUR, width=width)
        r = max(2, width + 1)
        for x, y in points:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=PERSON_COLOUR)
    _draw_names(draw, body.get("faces", []) or [])
    labels = body.get("labels") or []
    for i, item in enumerate(labels[:3]):
        draw.text((6, 6 + 12 * i), f"{item['label']} {item['score']:.2f}", fill=(255, 255, 255))
    return img
