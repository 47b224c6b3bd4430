"""Image input: validate, decode (at reduced size where the model needs less), orient.

Limits on bytes and pixels are checked before the full decode, so a decompression bomb costs
a header parse, not gigabytes; a JPEG whose scans are too short for its header is refused
before it is decoded (see :mod:`argus.images.jpeg`). Every mode the decoders give ends as
8-bit RGB: 16-bit and 32-bit grey scaled to 8 bits, transparency composited on white.
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
from argus.images.jpeg import check_complete, check_jpeg, decode_checked

FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO"}
# We enforce our own pixel limit before decoding; Pillow's own guard would fire first otherwise.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    question_pixels: int = 32_000_000
    """Most pixels one question may decode, summed over the sizes its steps decode (a JPEG
    decoded at 1/4 scale counts a sixteenth of its pixels; other formats three times)."""


@dataclass(frozen=True)
class DecodeSize:
    """What a model needs of the image. A JPEG is decoded at the smallest DCT scale (1, 1/2,
    1/4, 1/8) whose shorter side is still at least ``min_side`` and whose pixels are still
    at least ``work_pixels``; other formats at full size. None for both: full size."""

    min_side: int | None = None
    work_pixels: int | None = None

    @classmethod
    def of(cls, want: DecodeSize | int | None) -> DecodeSize:
        """A size from what callers pass: a ``DecodeSize``, a minimum side or None."""
        return want if isinstance(want, DecodeSize) else cls(min_side=want)


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
    """The EXIF orientation (1 = upright), from the header only."""
    try:
        if img.format == "PNG":
            # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after
            # the pixels (49 MB for a 143 kB PNG of zeros): only a chunk before them counts.
            raw = img.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            return int(exif.get(0x0112, 1))
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
    data: bytes,
    limits: Limits,
    min_side: DecodeSize | int | None = None,
    sha256: str | None = None,
) -> DecodedImage:
    """Decode to RGB at the size ``min_side`` (a :class:`DecodeSize` or a minimum shorter side)
    asks for; refused with 413 when that is over the pixels a question may decode.
    ``sha256`` is the data's digest when the caller already has it."""
    img = open_image(data, limits)
    fmt = str(img.format)
    width, height = oriented_size(img)
    if fmt in ("JPEG", "MPO"):  # a damaged file is 400 whatever its size
        check_jpeg(data)
    scale = decode_scale(img, DecodeSize.of(min_side))
    check_budget(img, scale, limits.question_pixels)
    digest = sha256 or sha256_bytes(data)
    rgb = _decode_jpeg_fast(data, img, scale) if fmt == "JPEG" else None
    if rgb is None:
        rgb = _decode_pillow(img, fmt, scale, data)
    return DecodedImage(rgb=rgb, width=width, height=height, sha256=digest, format=fmt)


def decode_scale(img: Image.Image, want: DecodeSize) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) that gives ``want``; 1 for other formats."""
    if img.format not in ("JPEG", "MPO") or (want.min_side is None and want.work_pixels is None):
        return 1
    w, h = img.size
    scale = 8
    if want.min_side:
        scale = min(scale, _draft_scale((w, h), want.min_side))
    if want.work_pixels:
        scale = min(
            scale,
            next((s for s in (8, 4, 2) if decoded_pixels((w, h), s) >= want.work_pixels), 1),
        )
    # Never past a side: a 1-pixel-wide image drafted at 1/4 asks Pillow for width 0 (and it
    # divides by it).
    return next(s for s in (8, 4, 2, 1) if s <= scale and s <= max(1, min(w, h)))


def _draft_scale(size: tuple[int, int], min_side: int) -> int:
    """The largest DCT scale (1, 2, 4 or 8) whose shorter side is still at least ``min_side``."""
    w, h = size
    shorter = min(w, h)
    if shorter <= min_side:
        return 1
    factor = min_side / shorter
    want_w, want_h = math.ceil(w * factor), math.ceil(h * factor)
    scale = min(w // want_w, h // want_h)
    return next((s for s in (8, 4, 2) if scale >= s), 1)


# Formats other than JPEG decode at full size through Pillow (inflate, unfilter, a 4-byte
# copy per pixel, then ours): measured here, a 16 MP PNG took 2.5-3 s and up to 360 MB for
# `faces`, so they count three times against the budget (10.6 MP at most by default, a 4K
# screenshot with room to spare).
_FULL_SIZE_WEIGHT = 3


def decoded_pixels(size: tuple[int, int], scale: int) -> int:
    """Pixels of an image of ``size`` decoded at DCT ``scale`` (libjpeg rounds sides up)."""
    return math.ceil(size[0] / scale) * math.ceil(size[1] / scale)


def check_budget(img: Image.Image, scale: int, budget: int, spent: int = 0) -> int:
    """The pixels decoding ``img`` at ``scale`` costs (three times its pixels for a format
    decoded at full size); TooLarge when ``spent`` plus that is over ``budget``."""
    jpeg = img.format in ("JPEG", "MPO")
    pixels = decoded_pixels(img.size, scale)
    cost = pixels if jpeg else pixels * _FULL_SIZE_WEIGHT
    if spent + cost > budget:
        w, h = img.size
        dw, dh = math.ceil(w / scale), math.ceil(h / scale)
        counted = "" if jpeg else (
            f", counted three times as {img.format} is decoded at full size (a JPEG is decoded at "
            "the reduced scale a model needs)"
        )
        already = f" after {spent:,} already decoded" if spent else ""
        raise TooLarge(
            f"this {w}x{h} {img.format} image would be decoded at {dw}x{dh} = {pixels:,} "
            f"pixels{counted}{already}, over the {budget:,} pixels a question may decode "
            f"(ARGUS_QUESTION_PIXELS); send a smaller image"
        )
    return cost


_CV2_RGB = {
    1: cv2.IMREAD_COLOR_RGB,
    2: (cv2.IMREAD_REDUCED_COLOR_2 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
    4: (cv2.IMREAD_REDUCED_COLOR_4 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
    8: (cv2.IMREAD_REDUCED_COLOR_8 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
}


def _decode_jpeg_fast(data: bytes, img: Image.Image, scale: int) -> np.ndarray | None:
    """The common JPEG (RGB or grey, upright) decoded by libjpeg-turbo straight to an RGB
    array at the draft scale: the same pixels as Pillow's ``draft`` + ``load`` (checked by the
    tests), without the intermediate image; a scan cut short is a 400 (see
    :func:`~argus.images.jpeg.decode_checked`). None when the Pillow path must decide."""
    if img.mode not in ("RGB", "L") or _orientation(img) != 1:
        return None
    # OpenCV decodes a truncated file with a warning, not an error: only take files whose
    # last scan is followed by an end-of-image marker (bytes may follow it).
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return None
    rgb = decode_checked(data, img.size, scale)
    if rgb is not None:
        return rgb
    # libjpeg warned of something other than a truncation: decoded as it always was.
    flags = _CV2_RGB[scale] | cv2.IMREAD_IGNORE_ORIENTATION
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if rgb is None or rgb.ndim != 3:
        return None
    return rgb


def _decode_pillow(img: Image.Image, fmt: str, scale: int, data: bytes = b"") -> np.ndarray:
    """Any format through Pillow; a JPEG's ``data`` is checked for a scan cut short first,
    which Pillow would fill with grey."""
    if data and fmt in ("JPEG", "MPO"):
        check_complete(data, img.mode)
    try:
        if scale > 1 and fmt in ("JPEG", "MPO"):
            # Asking for exactly size // scale makes draft pick this scale.
            w, h = img.size
            img.draft("RGB", (w // scale, h // scale))
        if fmt == "GIF":
            img.seek(0)
        upright = _orientation(img) == 1  # as the header said (see oriented_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            if not upright:
                img = ImageOps.exif_transpose(img) or img
        return to_rgb(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"the {fmt} image is damaged or truncated: {exc}") from exc


# Grey modes wider than 8 bits, and how to bring each to 0..255. PNG's 16-bit grey opens as
# I;16 (or I in older Pillow): its full range is 0..65535. F has no range of its own; Pillow's
# convert("L") reads it as 0..255, and so do we.
_WIDE_GREY = {"I;16": 257.0, "I;16L": 257.0, "I;16B": 257.0, "I;16N": 257.0, "I": 257.0, "F": 1.0}


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode as HxWx3 uint8 RGB. Transparent pixels are composited on white (as a
    page shows them), so colour hidden under alpha 0 never reaches a model."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return np.asarray(img)
    divisor = _WIDE_GREY.get(img.mode)
    if divisor is not None:
        # convert("RGB") clips these to 255: a 16-bit grey photo would be all white.
        values = np.asarray(img)
        if img.mode in ("I", "F"):  # signed: below 0 is black (convertScaleAbs takes |x|)
            values = np.maximum(values, 0)
        grey = cv2.convertScaleAbs(values, alpha=1.0 / divisor)  # rounded, saturated to 255
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if "A" in img.mode or "transparency" in img.info:
        return _on_white(np.asarray(img if img.mode == "RGBA" else img.convert("RGBA")))
    if img.mode in ("L", "1"):  # one channel widened by OpenCV: no 4-byte Pillow copy
        return cv2.cvtColor(np.asarray(img.convert("L")), cv2.COLOR_GRAY2RGB)
    return np.asarray(img.convert("RGB"))


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA composited on white: ``c * a / 255 + 255 * (255 - a) / 255``, which is
    ``round(c * a / 255) + (255 - a)`` exactly in 8 bits (OpenCV's saturating multiply)."""
    rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    alpha = cv2.cvtColor(np.ascontiguousarray(rgba[..., 3]), cv2.COLOR_GRAY2RGB)
    cv2.multiply(rgb, alpha, dst=rgb, scale=1.0 / 255)
    np.subtract(np.uint8(255), alpha, out=alpha)  # alpha now holds 255 - a
    return cv2.add(rgb, alpha)
