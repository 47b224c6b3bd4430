"""Draw detected faces (box, score, five landmarks) onto a copy of the image with Pillow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from argus.errors import BadInput
from argus.tasks.faces.cascade import Face

__all__ = ["LANDMARK_COLOURS", "draw_faces"]

BOX_COLOUR = (0, 255, 0)
# Left eye, right eye, nose, left mouth corner, right mouth corner.
LANDMARK_COLOURS = (
    (255, 0, 0),
    (0, 128, 255),
    (255, 255, 0),
    (255, 0, 255),
    (0, 255, 255),
)


def draw_faces(image: np.ndarray[Any, Any] | Image.Image, faces: Sequence[Face]) -> Image.Image:
    """A new RGB image with each face's box, score and landmarks drawn on it.

    Line widths and text size follow the image size so the marks stay visible on large photos.
    """
    if isinstance(image, Image.Image):
        canvas = image.convert("RGB")  # always a new image, so the caller's stays untouched
    elif isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3:
        if image.dtype != np.uint8:
            raise BadInput(f"draw_faces needs 8-bit pixels (uint8), not {image.dtype}")
        canvas = Image.fromarray(np.ascontiguousarray(image))
    else:
        raise BadInput("draw_faces needs a PIL image or an HxWx3 uint8 array")
    draw = ImageDraw.Draw(canvas)
    side = min(canvas.size)
    width = max(1, round(side / 300))
    radius = max(2, round(side / 200))
    font = ImageFont.load_default(size=max(10, round(side / 40)))
    for face in faces:
        x1, y1, x2, y2 = face.box
        draw.rectangle((x1, y1, x2, y2), outline=BOX_COLOUR, width=width)
        label = f"{face.score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label, font=font, anchor="lb")
        draw.rectangle((left, top - width, right + 2 * width, bottom), fill=BOX_COLOUR)
        draw.text((x1 + width, y1), label, fill=(0, 0, 0), font=font, anchor="lb")
        for (x, y), colour in zip(face.landmarks, LANDMARK_COLOURS, strict=False):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return canvas
