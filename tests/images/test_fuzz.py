"""Fuzzing the decoder (issue 15): real JPEG, PNG, WebP, GIF and BMP encodings, truncated,
closed early, with rewritten dimensions, flipped or inserted bytes, or random bytes. Every
input decodes to 8-bit RGB or is refused with a 4xx ArgusError: never another exception, and
within a bounded time. ``make fuzz`` runs 10,000 such inputs against a real server."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta

import cv2
import numpy as np
import pytest
from PIL import Image

from argus.errors import ArgusError
from argus.images import DecodeSize, Limits, decode

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def seeds() -> list[bytes]:
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, (x * y) % 256], axis=2).astype(np.uint8)
    img = Image.fromarray(rgb)
    _, rst = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_RST_INTERVAL, 1])
    rgba = img.convert("RGBA")
    return [
        encode(img, "JPEG"), encode(img, "JPEG", progressive=True), rst.tobytes(),
        encode(img.convert("CMYK"), "JPEG"), encode(img, "PNG"), encode(rgba, "PNG"),
        encode(img.convert("P"), "PNG"),
        encode(Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257), "PNG"),
        encode(img, "WEBP"), encode(rgba, "WEBP", lossless=True), encode(img, "GIF"),
        encode(img, "BMP"),
    ]


SEEDS = seeds()


def with_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    if data[:2] == b"\xff\xd8":
        at = max(out.find(b"\xff\xc0"), out.find(b"\xff\xc2"))
        if at >= 0:
            struct.pack_into(">HH", out, at + 5, height, width)
    elif data[:4] == b"\x89PNG":
        struct.pack_into(">II", out, 16, width, height)
        struct.pack_into(">I", out, 29, zlib.crc32(bytes(out[12:29])))
    elif data[:3] == b"GIF":
        struct.pack_into("<HH", out, 6, width, height)
    elif data[:2] == b"BM":
        struct.pack_into("<ii", out, 18, width, height)
    elif data[8:12] == b"WEBP":
        struct.pack_into("<HH", out, 26, width & 0x3FFF, height & 0x3FFF)
    return bytes(out)


@st.composite
def images(draw: st.DrawFn) -> bytes:
    data: bytes = draw(st.sampled_from(SEEDS))
    kind = draw(st.sampled_from(["cut", "closed", "size", "flip", "insert", "random"]))
    if kind == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "closed":
        return data[: draw(st.integers(0, len(data) - 1))] + b"\xff\xd9"
    if kind == "size":
        side = st.sampled_from([0, 1, 3, 255, 4000, 7071, 65_535])
        return with_size(data, draw(side), draw(side))
    if kind == "flip":
        out = bytearray(data)
        for at, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1),
                                                 st.integers(0, 255)), min_size=1, max_size=8)):
            out[at] = value
        return bytes(out)
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    return draw(st.binary(max_size=512))


SIZES = [None, DecodeSize(min_side=32), DecodeSize(work_pixels=1_000)]


@hypothesis.settings(
    max_examples=300,
    deadline=timedelta(seconds=5),  # bounded per input; generous for a shared machine
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(data=images(), size=st.sampled_from(SIZES))
def test_any_input_decodes_or_is_refused_with_a_4xx(data: bytes, size: DecodeSize | None) -> None:
    try:
        image = decode(data, Limits(), size)
    except ArgusError as exc:
        assert 400 <= exc.status < 500, exc.message
        assert exc.message
        return
    assert image.rgb.dtype == np.uint8 and image.rgb.ndim == 3 and image.rgb.shape[2] == 3
    assert image.rgb.shape[0] >= 1 and image.rgb.shape[1] >= 1
