"""The pixels one question may decode (issue 15): a tiny PNG of 7000x7000 zeros is refused
with 413 and the reason instead of costing seconds and gigabytes; a JPEG counts the pixels of
the reduced scale it is decoded at; sizes that come to the same decode share it."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from argus.errors import TooLarge
from argus.images import DecodeSize, ImageSource, Limits, decode, open_image, sha256_bytes


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def zeros_png() -> bytes:
    return encode(Image.fromarray(np.zeros((7000, 7000), np.uint8)), "PNG")


def test_a_small_png_of_49_megapixels_is_over_the_budget(zeros_png: bytes) -> None:
    assert len(zeros_png) < 200_000
    with pytest.raises(TooLarge, match="ARGUS_QUESTION_PIXELS") as refused:
        decode(zeros_png, Limits())
    assert refused.value.status == 413
    assert "7000x7000 PNG" in refused.value.message
    assert "counted three times as PNG is decoded at full size" in refused.value.message


def test_a_jpeg_counts_the_scale_it_is_decoded_at() -> None:
    data = encode(Image.new("RGB", (4000, 3000), (10, 20, 30)), "JPEG")
    limits = Limits(question_pixels=1_000_000)
    with pytest.raises(TooLarge, match="4000x3000 JPEG image would be decoded at 4000x3000"):
        decode(data, limits)
    small = decode(data, limits, DecodeSize(min_side=256))  # 1/8 scale: 500x375
    assert small.rgb.shape == (375, 500, 3)
    assert (small.width, small.height) == (4000, 3000)


def test_work_pixels_pick_the_smallest_scale_that_keeps_them() -> None:
    data = encode(Image.new("RGB", (4000, 3000), (10, 20, 30)), "JPEG")
    assert decode(data, Limits(), DecodeSize(work_pixels=2_000_000)).rgb.shape == (1500, 2000, 3)
    assert decode(data, Limits(), DecodeSize(work_pixels=200_000)).rgb.shape == (750, 1000, 3)
    assert decode(data, Limits(), DecodeSize(work_pixels=20_000_000)).rgb.shape == (3000, 4000, 3)


def test_the_steps_of_a_question_share_the_budget() -> None:
    data = encode(Image.new("RGB", (2000, 1000), (10, 20, 30)), "JPEG")

    async def ask() -> None:
        source = ImageSource(data, sha256_bytes(data), Limits(question_pixels=2_200_000))
        await source.get(DecodeSize(min_side=500))  # 1/2 scale: 500,000 pixels
        assert source.pixels == 500_000
        with pytest.raises(TooLarge, match="after 500,000 already decoded"):
            await source.get(None)  # full size: 2,000,000 more
        source.close()

    asyncio.run(ask())


def test_a_png_is_decoded_once_whatever_sizes_its_steps_ask() -> None:
    data = encode(Image.new("RGB", (600, 400), (10, 20, 30)), "PNG")

    async def ask() -> None:
        source = ImageSource(data, sha256_bytes(data), Limits(question_pixels=800_000))
        first = await source.get(DecodeSize(min_side=256))
        assert await source.get(None) is first
        assert await source.get(DecodeSize(work_pixels=100_000)) is first
        assert source.pixels == 3 * 240_000  # a PNG counts three times

    asyncio.run(ask())


def test_a_pngs_orientation_is_read_without_decoding_it(zeros_png: bytes) -> None:
    from argus.images import oriented_size

    header = open_image(zeros_png, Limits())
    assert oriented_size(header) == (7000, 7000)
    assert header.tile  # still undecoded: Pillow's getexif() would have decoded 49 MB
