"""Images: validated and decoded at the size a model needs (``decode``, with the JPEG check
in ``jpeg``), shared by the steps of a graph within a pixel budget (``source``), encoded
losslessly (``png``), drawn with their answers (``draw``); memory handed back (``memory``)."""

from __future__ import annotations

from argus.images.decode import (
    DecodedImage,
    DecodeSize,
    Limits,
    decode,
    open_image,
    oriented_size,
    sha256_bytes,
)
from argus.images.memory import release_memory
from argus.images.png import png_b64, png_bytes
from argus.images.source import ImageSource

__all__ = [
    "DecodeSize",
    "DecodedImage",
    "ImageSource",
    "Limits",
    "decode",
    "open_image",
    "oriented_size",
    "png_b64",
    "png_bytes",
    "release_memory",
    "sha256_bytes",
]
