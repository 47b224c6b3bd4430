"""Image input: validate, decode (at reduced size where the model needs less), orient.

Limits on bytes and pixels are checked before the full decode, so a decompression bomb costs
a header parse, not gigabytes.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from argus.errors import BadInput, TooLarge, UnsupportedMedia

FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO"}
# We enforce our own pixel limit before decoding; Pillow's own guard would fire first otherwise.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000


@dataclass
class DecodedImage:
    """An RGB image as decoded for a model, plus facts about the original."""

    rgb: np.ndarray  # HxWx3 uint8, possibly reduced from the original size
    width: int  # original width after EXIF orientation
    height: int  # original height after EXIF orientation
    sha256: str
    format: str

    @property
    def scale(self) -> float:
        """Decoded size / original size (1.0 when decoded at full size)."""
        return self.rgb.shape[1] / self.width

    def info(self) -> dict[str, object]:
        return {"sha256": self.sha256, "width": self.width, "height": self.height}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not reject an otherwise good image
        return 1


def oriented_size(img: Image.Image) -> tuple[int, int]:
    """Width and height as displayed, after the EXIF orientation (read from the header)."""
    w, h = img.size
    return (h, w) if _orientation(img) in (5, 6, 7, 8) else (w, h)


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """Identify and size-check the image without decoding its pixels."""
    if not data:
        raise BadInput("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"the image is {len(data):,} bytes, over the limit of {limits.max_bytes:,} bytes"
        )
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(
            "the data is not an image Argus can read (expected JPEG, PNG, WebP, BMP or GIF)"
        ) from exc
    except Exception as exc:
        raise BadInput(f"the image header cannot be read: {exc}") from exc
    if img.format not in FORMATS:
        raise UnsupportedMedia(
            f"{img.format} images are not accepted (expected JPEG, PNG, WebP, BMP or GIF)"
        )
    w, h = img.size
    if w <= 0 or h <= 0:
        raise BadInput(f"the image has no pixels ({w}x{h})")
    if w * h > limits.max_pixels:
        raise TooLarge(
            f"the image is {w}x{h} = {w * h:,} pixels, over the limit of "
            f"{limits.max_pixels:,} pixels"
        )
    return img


def decode(
    data: bytes, limits: Limits, min_side: int | None = None, sha256: str | None = None
) -> DecodedImage:
    """Decode to RGB. With ``min_side``, a JPEG is decoded at the smallest DCT scale whose
    shorter side is still at least ``min_side`` (a quarter of the work for large photos).
    ``sha256`` is the data's digest when the caller already has it."""
    img = open_image(data, limits)
    fmt = str(img.format)
    width, height = oriented_size(img)
    digest = sha256 or sha256_bytes(data)
    rgb = _decode_jpeg_fast(data, img, min_side) if fmt == "JPEG" else None
    if rgb is None:
        rgb = _decode_pillow(img, fmt, min_side)
    return DecodedImage(rgb=rgb, width=width, height=height, sha256=digest, format=fmt)


def _draft_scale(size: tuple[int, int], min_side: int | None) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) Pillow's ``draft`` picks for ``min_side``."""
    w, h = size
    shorter = min(w, h)
    if not min_side or shorter <= min_side:
        return 1
    factor = min_side / shorter
    want_w, want_h = math.ceil(w * factor), math.ceil(h * factor)
    scale = min(w // want_w, h // want_h)
    return next((s for s in (8, 4, 2) if scale >= s), 1)


_CV2_RGB = {
    1: cv2.IMREAD_COLOR_RGB,
    2: (cv2.IMREAD_REDUCED_COLOR_2 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
    4: (cv2.IMREAD_REDUCED_COLOR_4 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
    8: (cv2.IMREAD_REDUCED_COLOR_8 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
}


def _decode_jpeg_fast(data: bytes, img: Image.Image, min_side: int | None) -> np.ndarray | None:
    """The common JPEG (RGB or grey, upright) decoded by OpenCV's libjpeg-turbo straight to an
    RGB array at the draft scale: the same pixels as Pillow's ``draft`` + ``load`` (checked by
    the tests), without the intermediate image. None when the Pillow path must decide."""
    if img.mode not in ("RGB", "L") or _orientation(img) != 1:
        return None
    # OpenCV decodes a truncated file with a warning, not an error: only take files whose
    # last scan is followed by an end-of-image marker (bytes may follow it).
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return None
    flags = _CV2_RGB[_draft_scale(img.size, min_side)] | cv2.IMREAD_IGNORE_ORIENTATION
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if rgb is None or rgb.ndim != 3:
        return None
    return rgb


def _decode_pillow(img: Image.Image, fmt: str, min_side: int | None) -> np.ndarray:
    try:
        if min_side and fmt in ("JPEG", "MPO"):
            scale = _draft_scale(img.size, min_side)
            if scale > 1:  # asking for exactly size // scale makes draft pick this scale
                w, h = img.size
                img.draft("RGB", (w // scale, h // scale))
        if fmt == "GIF":
            img.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            if _orientation(img) != 1:
                img = ImageOps.exif_transpose(img) or img
        if img.mode != "RGB":
            img = _to_rgb(img)
        return np.asarray(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"the {fmt} image is damaged or truncated: {exc}") from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
