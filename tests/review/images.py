"""Small real images of one colour: what the tiny classifier is sure of (pure colours) or not
(grey, where its four classes score alike)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def image(colour: tuple[int, int, int], fmt: str = "PNG", size: tuple[int, int] = (40, 30)
          ) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def greys(count: int) -> list[bytes]:
    """``count`` distinct grey images: the tiny classifier scores each class about 0.25."""
    return [image((120 + i, 120 + i, 120 + i)) for i in range(count)]


RED = image((230, 10, 10))
GREY = image((127, 127, 127))
