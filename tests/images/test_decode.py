"""Image input: formats, orientation, reduced decode, and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from argus.errors import BadInput, TooLarge, UnsupportedMedia
from argus.images import DecodeSize, Limits, decode

LIMITS = Limits()


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.coffee())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_every_accepted_format_decodes_to_rgb(coffee: Image.Image, fmt: str) -> None:
    img = decode(encode(coffee, fmt), LIMITS)
    assert img.rgb.shape == (400, 600, 3)
    assert img.rgb.dtype == np.uint8
    assert (img.width, img.height, img.format) == (600, 400, fmt)
    assert len(img.sha256) == 64


def test_gif_answers_its_first_frame(coffee: Image.Image) -> None:
    frames = [coffee, Image.new("RGB", coffee.size, (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    img = decode(buf.getvalue(), LIMITS)
    assert img.rgb[..., 2].mean() < 200  # not the all-blue second frame


def test_exif_orientation_is_applied(coffee: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    img = decode(encode(coffee, "JPEG", exif=exif), LIMITS)
    assert (img.width, img.height) == (400, 600)
    assert img.rgb.shape == (600, 400, 3)


def test_large_jpeg_is_decoded_at_reduced_size_but_reports_original(coffee: Image.Image) -> None:
    big = coffee.resize((2400, 1600))
    img = decode(encode(big, "JPEG"), LIMITS, min_side=256)
    assert (img.width, img.height) == (2400, 1600)
    assert min(img.rgb.shape[:2]) >= 256
    assert img.rgb.shape[:2] == (400, 600)  # 1/4 DCT scale: the smallest that keeps 256


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    img = decode(encode(rgba, "PNG"), LIMITS)
    assert img.rgb[0, 0].tolist() == [255, 255, 255]


def test_zero_bytes() -> None:
    with pytest.raises(BadInput, match="empty"):
        decode(b"", LIMITS)


def test_not_an_image() -> None:
    with pytest.raises(UnsupportedMedia, match="not an image"):
        decode(b"%PDF-1.4 this is a document, not a picture" * 10, LIMITS)


def test_wrong_magic(coffee: Image.Image) -> None:
    data = bytearray(encode(coffee, "PNG"))
    data[:8] = b"\x00" * 8
    with pytest.raises(UnsupportedMedia):
        decode(bytes(data), LIMITS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(coffee: Image.Image, fmt: str) -> None:
    data = encode(coffee, fmt)
    with pytest.raises(BadInput, match="damaged or truncated"):
        decode(data[: len(data) // 2], LIMITS)


def test_over_the_byte_limit(coffee: Image.Image) -> None:
    data = encode(coffee, "PNG")
    with pytest.raises(TooLarge, match="over the limit"):
        decode(data, Limits(max_bytes=len(data) - 1))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height pixels (all zeros compress to almost nothing)."""
    raw = zlib.compress(b"\x00" * (1 + width) * 64, 9)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = png_bomb(100_000, 100_000)
    assert len(data) < 10_000
    with pytest.raises(TooLarge, match="pixels"):
        decode(data, LIMITS)


def test_unsupported_format(coffee: Image.Image) -> None:
    with pytest.raises(UnsupportedMedia, match="TIFF"):
        decode(encode(coffee, "TIFF"), LIMITS)


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("min_side", [None, 256, 120, 50])
@pytest.mark.parametrize("progressive", [False, True])
def test_fast_jpeg_decode_gives_pillows_pixels(
    coffee: Image.Image, mode: str, min_side: int | None, progressive: bool
) -> None:
    from argus.images.decode import (
        DecodeSize,
        _decode_jpeg_fast,
        _decode_pillow,
        decode_scale,
        open_image,
    )

    big = coffee.convert(mode).resize((1201, 801))  # odd sizes: the scaled sides round up
    data = encode(big, "JPEG", quality=90, progressive=progressive) + b"trailing bytes"
    scale = decode_scale(open_image(data, LIMITS), DecodeSize(min_side))
    fast = _decode_jpeg_fast(data, open_image(data, LIMITS), scale)
    slow = _decode_pillow(open_image(data, LIMITS), "JPEG", scale)
    assert fast is not None
    assert fast.shape == slow.shape and fast.dtype == np.uint8
    assert np.array_equal(fast, slow)
    assert np.array_equal(decode(data, LIMITS, min_side).rgb, slow)


def test_truncated_jpeg_does_not_take_the_fast_path(coffee: Image.Image) -> None:
    from argus.images.decode import _decode_jpeg_fast, open_image

    data = encode(coffee, "JPEG")
    cut = data[: len(data) * 3 // 4]
    assert _decode_jpeg_fast(cut, open_image(cut, LIMITS), 2) is None
    with pytest.raises(BadInput, match="damaged or truncated"):
        decode(cut, LIMITS, 256)


@pytest.mark.parametrize("mode", ["RGB", "CMYK"])  # CMYK takes Pillow's draft, RGB OpenCV's
def test_an_image_thinner_than_the_scale_decodes(mode: str) -> None:
    """Found by the fuzz test: a 1 x 4000 JPEG asked for 1,000 working pixels drafted at 1/4,
    so Pillow was asked for a width of 0 and raised ZeroDivisionError (a 500)."""
    buf = io.BytesIO()
    Image.new(mode, (1, 4000), "white").save(buf, format="JPEG")
    image = decode(buf.getvalue(), Limits(), DecodeSize(min_side=None, work_pixels=1000))
    assert (image.width, image.height) == (1, 4000)
    assert image.rgb.shape[1] == 1 and image.rgb.shape[0] >= 1000
