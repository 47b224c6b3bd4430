"""Every mode Pillow gives for the accepted formats ends as the right 8-bit RGB (issue 14:
16-bit grey decoded as all white; colour under transparent pixels must not reach a model)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from argus.images import Limits, decode

LIMITS = Limits()
RAMP = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))  # 8x64, 0..252
HIDDEN = (255, 0, 0)  # colour under fully transparent pixels


def encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def grey_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=2)


def test_8_bit_grey_and_bilevel() -> None:
    assert np.array_equal(decode(encode(Image.fromarray(RAMP, "L")), LIMITS).rgb, grey_rgb(RAMP))
    bits = Image.fromarray(RAMP >= 128).convert("1")
    expected = grey_rgb(np.where(RAMP >= 128, 255, 0).astype(np.uint8))
    assert np.array_equal(decode(encode(bits), LIMITS).rgb, expected)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "WEBP"])
def test_rgb(fmt: str) -> None:
    rgb = np.stack([RAMP, RAMP[:, ::-1], np.full_like(RAMP, 77)], axis=2)
    extra = {"lossless": True} if fmt == "WEBP" else {}
    assert np.array_equal(decode(encode(Image.fromarray(rgb), fmt, **extra), LIMITS).rgb, rgb)


def test_16_bit_grey_png_is_scaled_to_8_bits_not_white() -> None:
    wide = RAMP.astype(np.uint16) * 257  # 0..64764, the 16-bit values of the 8-bit ramp
    data = encode(Image.fromarray(wide))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert np.array_equal(decode(data, LIMITS).rgb, grey_rgb(RAMP))


def test_32_bit_integer_and_float_grey() -> None:
    from argus.images.decode import to_rgb

    wide = Image.fromarray(RAMP.astype(np.int32) * 257)  # mode I: 16-bit PNG values
    assert wide.mode == "I"
    assert np.array_equal(to_rgb(wide), grey_rgb(RAMP))
    floats = Image.fromarray(RAMP.astype(np.float32))  # mode F: 0..255 as Pillow reads it
    assert floats.mode == "F"
    assert np.array_equal(to_rgb(floats), grey_rgb(RAMP))


def test_16_bit_rgb_png_written_by_opencv() -> None:
    rgb = np.stack([RAMP, RAMP[:, ::-1], np.full_like(RAMP, 200)], axis=2)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    assert ok
    assert np.array_equal(decode(png.tobytes(), LIMITS).rgb, rgb)


def test_cmyk_jpeg() -> None:
    rgb = np.stack([RAMP, RAMP[:, ::-1], np.full_like(RAMP, 128)], axis=2)
    data = encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=100)
    decoded = decode(data, LIMITS).rgb
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < 4


def rgba_half_transparent() -> np.ndarray:
    """Left half opaque mid-grey, right half the hidden colour at alpha 0."""
    rgba = np.zeros((8, 64, 4), np.uint8)
    rgba[:, :32] = (100, 100, 100, 255)
    rgba[:, 32:] = (*HIDDEN, 0)
    return rgba


def check_on_white(rgb: np.ndarray) -> None:
    assert (rgb[:, :32] == 100).all()
    assert (rgb[:, 32:] == 255).all()  # white, not the hidden colour


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_rgba_is_composited_on_white(fmt: str) -> None:
    extra = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(Image.fromarray(rgba_half_transparent(), "RGBA"), fmt, **extra)
    check_on_white(decode(data, LIMITS).rgb)


def test_partial_alpha_is_blended() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[...] = (0, 0, 0, 128)
    rgb = decode(encode(Image.fromarray(rgba, "RGBA")), LIMITS).rgb
    assert (rgb == 127).all()  # 255 * (255 - 128) / 255, rounded


def test_grey_with_alpha() -> None:
    la = np.zeros((8, 64, 2), np.uint8)
    la[:, :32] = (100, 255)
    la[:, 32:] = (30, 0)
    check_on_white(decode(encode(Image.fromarray(la, "LA")), LIMITS).rgb)


def test_palette_with_and_without_transparency() -> None:
    indexed = Image.new("P", (64, 8))
    indexed.putpalette([100, 100, 100, *HIDDEN] + [0] * 762)
    indexed.paste(1, (32, 0, 64, 8))
    opaque = decode(encode(indexed), LIMITS).rgb
    assert (opaque[:, :32] == 100).all() and (opaque[:, 32:] == HIDDEN).all()
    for fmt in ("PNG", "GIF"):
        check_on_white(decode(encode(indexed, fmt, transparency=1), LIMITS).rgb)
