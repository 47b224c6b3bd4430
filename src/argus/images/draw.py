"""Pictures of answers: boxes, scores, landmarks and labels drawn on the image."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

FACE_COLOUR = (0, 255, 0)
OBJECT_COLOUR = (255, 80, 0)
PERSON_COLOUR = (0, 160, 255)
TEXT_COLOUR = (255, 0, 200)
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
        draw_person(draw, person, width)
    draw_text_lines(img, body.get("lines") or [], width)
    draw_face_attributes(draw, body.get("attributes") or [], body.get("attention") or [], width)
    _draw_names(draw, body.get("faces", []) or [])
    labels = body.get("labels") or []
    for i, item in enumerate(labels[:3]):
        draw.text((6, 6 + 12 * i), f"{item['label']} {item['score']:.2f}", fill=(255, 255, 255))
    return img


def draw_text_lines(img: Image.Image, lines: list[Any], width: int) -> None:
    """Each text line's quadrilateral, veiled in white, with what was read written inside it
    as large as fits: dense pages stay legible, and a misreading sits on the words it
    misread. Drawn into ``img`` itself."""
    if not lines:
        return
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    veil = ImageDraw.Draw(overlay)
    for line in lines:
        veil.polygon([(float(x), float(y)) for x, y in line["box"]], fill=(255, 255, 255, 190))
    img.paste(Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB"))
    draw = ImageDraw.Draw(img)
    for line in lines:
        corners = [(float(x), float(y)) for x, y in line["box"]]
        draw.polygon(corners, outline=TEXT_COLOUR, width=max(1, width // 2))
        (x0, y0), (x1, y1), _, (x3, y3) = corners
        height = max(6.0, ((x3 - x0) ** 2 + (y3 - y0) ** 2) ** 0.5)
        length = max(6.0, ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5)
        size = max(6, round(height * 0.6))
        font = ImageFont.load_default(size=size)
        drawn = max(1.0, draw.textlength(line["text"], font=font))
        if drawn > length * 0.95:  # a long reading in a short box: smaller, to fit
            font = ImageFont.load_default(size=max(6, int(size * length * 0.95 / drawn)))
        centre = ((x0 + x1 + corners[2][0] + x3) / 4, (y0 + y1 + corners[2][1] + y3) / 4)
        draw.text(centre, line["text"], fill=(120, 0, 90), font=font, anchor="mm")


GAZE_COLOUR = (255, 230, 0)
ATTRIBUTE_COLOUR = (255, 255, 255)


def face_words(face: Mapping[str, Any]) -> list[str]:
    """A face's attributes in a few words: smile, mouth, eyes, gaze, head pose."""
    if "gaze" not in face:
        return [f"no face mesh ({face.get('score', 0):.2f})"]
    eyes = face["eyes"]
    shut = [side for side in ("left", "right") if not eyes[side]["open"]]
    head = face["head"]
    return [
        f"{'smiling' if face['smiling'] else 'not smiling'} {face['smile']:.2f}"
        + (", mouth open" if face["mouth_open"] else ""),
        "eyes open" if not shut else f"{' and '.join(shut)} eye shut",
        f"looks {face['gaze']['word']}",
        f"yaw {head['yaw']:.0f} pitch {head['pitch']:.0f} roll {head['roll']:.0f}",
    ]


def draw_face_attributes(
    draw: ImageDraw.ImageDraw,
    faces: list[Mapping[str, Any]],
    attention: list[Mapping[str, Any]],
    width: int,
) -> None:
    """Each face's gaze as an arrow from between the eyes, its attributes as words under its
    box, and what it looks at (from an attention step) as a dashed line to that thing."""
    for face in faces:
        x1, _, _, y2 = face["box"]
        gaze = face.get("gaze")
        if gaze is not None:
            (ox, oy), (ex, ey) = gaze["origin"], gaze["end"]
            if gaze["word"] == "at the camera":  # the arrow is short: a ring says it
                r = 3 * width + 3
                draw.ellipse((ox - r, oy - r, ox + r, oy + r), outline=GAZE_COLOUR, width=width)
            draw.line((ox, oy, ex, ey), fill=GAZE_COLOUR, width=width)
            dx, dy = gaze["direction"]
            head = 4 * width + 4
            # The arrow head: two short strokes back from the end, 30° either side.
            for turn in (0.5236, -0.5236):
                cos, sin = math.cos(turn), math.sin(turn)
                bx, by = dx * cos - dy * sin, dx * sin + dy * cos
                draw.line((ex, ey, ex - bx * head, ey - by * head), fill=GAZE_COLOUR, width=width)
        for i, text in enumerate(face_words(face)):
            at = (x1 + 2, y2 + 2 + 12 * i)
            # On a dark band, so the words read on light clothes and walls too.
            draw.rectangle(draw.textbbox(at, text), fill=(0, 0, 0))
            draw.text(at, text, fill=ATTRIBUTE_COLOUR)
    for item in attention:
        target = item.get("looking_at") or {}
        if "box" not in target:
            continue
        fx1, fy1, fx2, fy2 = item["box"]
        tx1, ty1, tx2, ty2 = target["box"]
        start, end = ((fx1 + fx2) / 2, (fy1 + fy2) / 2), ((tx1 + tx2) / 2, (ty1 + ty2) / 2)
        steps = 12
        for k in range(0, steps, 2):  # dashed: every other twelfth of the way
            a, b = k / steps, (k + 1) / steps
            draw.line((start[0] + (end[0] - start[0]) * a, start[1] + (end[1] - start[1]) * a,
                       start[0] + (end[0] - start[0]) * b, start[1] + (end[1] - start[1]) * b),
                      fill=GAZE_COLOUR, width=max(1, width // 2))
        draw.rectangle((tx1, ty1, tx2, ty2), outline=GAZE_COLOUR, width=max(1, width // 2))


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
