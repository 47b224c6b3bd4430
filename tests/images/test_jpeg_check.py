"""JPEGs whose scans cannot hold the image their header claims are refused before decoding,
on both decoders' paths (OpenCV's for upright RGB and grey, Pillow's for the rest): libjpeg
would fill the missing part with grey and the server would answer it (issue 15)."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from argus.errors import BadInput
from argus.images import Limits, decode

LIMITS = Limits()


def jpeg(rgb: np.ndarray, restart_interval: int = 0) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_RST_INTERVAL, restart_interval]
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    assert ok
    return data.tobytes()


def rotated(data: bytes) -> bytes:
    """The JPEG with an EXIF orientation of 6, which sends it down Pillow's path."""
    exif = Image.Exif()
    exif[0x0112] = 6
    body = b"Exif\x00\x00" + exif.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def with_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header rewritten to claim ``width`` x ``height``."""
    out = bytearray(data)
    sof = out.find(b"\xff\xc0")
    struct.pack_into(">HH", out, sof + 5, height, width)
    return bytes(out)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[:256, :256])



def test_a_tiny_jpeg_claiming_50_megapixels_is_refused(photo: np.ndarray) -> None:
    small = jpeg(np.full((16, 16, 3), 90, np.uint8))
    bomb = with_size(small, 7071, 7071)
    assert len(bomb) < 1000
    for data in (bomb, rotated(bomb)):
        with pytest.raises(BadInput, match="truncated: its scans hold") as refused:
            decode(data, LIMITS)
        assert refused.value.status == 400


def test_a_jpeg_cut_mid_scan_and_closed_is_refused(photo: np.ndarray) -> None:
    data = jpeg(photo, restart_interval=4)
    cut = data[: len(data) // 2] + b"\xff\xd9"
    for candidate in (cut, rotated(cut)):
        with pytest.raises(BadInput, match="restart intervals"):
            decode(candidate, LIMITS)


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_jpeg_without_restart_markers_cut_mid_scan_and_closed_is_refused(
    photo: np.ndarray, progressive: bool, mode: str
) -> None:
    """No bound on the scan's length sees this cut: only the entropy decoding runs out of
    data before the last block, and libjpeg would fill the rest with grey."""
    buf = io.BytesIO()
    Image.fromarray(photo).convert(mode).save(buf, "JPEG", quality=90, progressive=progressive)
    data = buf.getvalue()
    cut = data[: len(data) * 2 // 3] + b"\xff\xd9"
    for candidate in (cut, rotated(cut)):  # OpenCV's path (RGB, L) and Pillow's
        with pytest.raises(BadInput, match="truncated: a scan ends before its last block"):
            decode(candidate, LIMITS, 64)


def test_bytes_after_the_last_block_are_no_truncation(photo: np.ndarray) -> None:
    """Extraneous bytes before the end marker make libjpeg warn too, of another thing: the
    image is whole and answered as before."""
    data = jpeg(photo)
    padded = data[:-2] + b"\x12\x34\x56" + data[-2:]
    assert np.array_equal(decode(padded, LIMITS).rgb, decode(data, LIMITS).rgb)


def test_a_jpeg_cut_without_its_end_marker_is_refused(photo: np.ndarray) -> None:
    data = jpeg(photo)
    for candidate in (data[: len(data) * 2 // 3], rotated(data)[: len(data) * 2 // 3]):
        with pytest.raises(BadInput, match="truncated"):
            decode(candidate, LIMITS)


@pytest.mark.parametrize("restart_interval", [0, 1, 7])
def test_whole_jpegs_pass_on_both_paths(photo: np.ndarray, restart_interval: int) -> None:
    data = jpeg(photo, restart_interval) + b"trailing bytes after the image"
    upright, turned = decode(data, LIMITS), decode(rotated(data), LIMITS)
    assert upright.rgb.shape == (256, 256, 3)
    assert np.array_equal(np.rot90(upright.rgb, k=-1), turned.rgb)


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_pillow_written_jpegs_pass(photo: np.ndarray, progressive: bool, mode: str) -> None:
    buf = io.BytesIO()
    Image.fromarray(photo).convert(mode).save(buf, "JPEG", progressive=progressive)
    assert decode(buf.getvalue(), LIMITS).rgb.shape == (256, 256, 3)
