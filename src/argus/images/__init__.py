"""Images: validated and decoded at the size a model needs (``decode``), shared by the steps
of a graph (``source``), encoded losslessly (``png``) and drawn with their answers (``draw``)."""

from __future__ import annotations

from argus.images.decode import (
    DecodedImage,
    Limits,
    decode,
    open_image,
    oriented_size,
    sha256_bytes,
)
from argus.images.png import png_b64, png_bytes
from argus.images.source import ImageSource

__all__ = [
    "DecodedImage",
    "ImageSource",
    "Limits",
    "decode",
    "open_image",
    "oriented_size",
    "png_b64",
    "png_bytes",
    "sha256_bytes",
]
