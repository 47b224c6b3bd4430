"""A walk over a JPEG's markers before it is decoded: refuse files whose scans cannot hold
the pixels their frame header claims.

libjpeg (behind both OpenCV and Pillow) decodes a scan that ends early with a warning, not an
error, and fills the rest of the image with grey; a 631-byte file whose frame header is
rewritten to 7071x7071 then decodes to 50 million grey pixels and is answered. Both decoders
hide the warning, so the file is checked here: every Huffman-coded block costs at least one
bit in the scan that carries its DC coefficient, so the scans of a whole image hold at least
one bit per block of its full-resolution component; and a file with restart markers holds
exactly one between every ``interval`` MCUs of each scan over all its components, which
catches a file cut mid-scan and closed with an end-of-image marker. A file under either
bound, or one that ends before its end-of-image marker, is refused.

A file without restart markers cut mid-scan and closed with an end-of-image marker passes
both bounds; only decoding its entropy-coded data shows that a scan runs out before its last
block. libjpeg says so in a warning ("premature end of data segment"), which OpenCV prints and
Pillow drops, so JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` with warnings
raised (:func:`decode_checked`), and that warning is a 400. Other warnings (a bad Huffman
code, a bogus progression: files real cameras and editors write) leave the file to the
lenient decoders, as before.
"""

from __future__ import annotations

import math
import re

import numpy as np
import simplejpeg

from argus.errors import BadInput

# Start-of-frame markers (C0-CF except DHT C4, JPG C8 and DAC CC); C9-CF are arithmetic-coded,
# where a flat image can take less than a bit per block, so the bound is not applied to them.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS, _EOI, _DRI = 0xDA, 0xD9, 0xDD
# A marker ending a scan's entropy-coded data: 0xFF then anything but a stuffed 0x00, a
# restart marker (D0-D7, inside the scan) or another fill 0xFF.
_END_OF_SCAN = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_RESTART = re.compile(rb"\xff[\xd0-\xd7]")


def check_jpeg(data: bytes) -> None:
    """Raise :class:`BadInput` when the JPEG is truncated or its scans are too short for its
    frame; return quietly otherwise (the decoders judge everything else)."""
    if data[:2] != b"\xff\xd8":
        return  # not a plain JPEG stream: let the decoder say what it is
    pos, size = 2, len(data)
    blocks = mcus = components = interval = 0
    arithmetic = False
    scan_bytes = 0
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        while pos < size and data[pos] == 0xFF and pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1
        if pos < size and data[pos] != 0xFF:
            # Stray bytes between segments: libjpeg skips them to the next marker, as here.
            pos = data.find(b"\xff", pos)
            pos = size if pos < 0 else pos
            continue
        if pos + 1 >= size:
            raise BadInput(
                "the JPEG image is damaged or truncated: it ends before its end-of-image marker"
            )
        marker = data[pos + 1]
        pos += 2
        if marker == _EOI:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # markers without a length
        if pos + 2 > size:
            raise BadInput("the JPEG image is damaged or truncated: a segment is cut short")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            raise BadInput("the JPEG image is damaged or truncated: a segment is cut short")
        if marker in _SOF and length >= 8:
            height = int.from_bytes(data[pos + 3 : pos + 5], "big")
            width = int.from_bytes(data[pos + 5 : pos + 7], "big")
            blocks = math.ceil(width / 8) * math.ceil(height / 8)
            arithmetic = marker in _ARITHMETIC
            components = data[pos + 7]
            sampling = data[pos + 9 : pos + 8 + 3 * components : 3]
            h_max = max((b >> 4 for b in sampling), default=1) or 1
            v_max = max((b & 15 for b in sampling), default=1) or 1
            mcus = math.ceil(width / (8 * h_max)) * math.ceil(height / (8 * v_max))
            if components == 1:  # a lone component's MCU is one block, whatever its sampling
                mcus = blocks
        if marker == _DRI and length >= 4:
            interval = int.from_bytes(data[pos + 2 : pos + 4], "big")
        in_scan = data[pos + 2] if marker == _SOS and length >= 3 else 0
        pos += length
        if marker == _SOS:
            end = _END_OF_SCAN.search(data, pos)
            if end is None:
                raise BadInput(
                    "the JPEG image is damaged or truncated: a scan ends before its "
                    "end-of-image marker"
                )
            scan_bytes += end.start() - pos
            if interval and mcus and in_scan == components:
                restarts = len(_RESTART.findall(data, pos, end.start()))
                if restarts < math.ceil(mcus / interval) - 1:
                    raise BadInput(
                        f"the JPEG image is damaged or truncated: a scan ends after "
                        f"{restarts + 1:,} of its {math.ceil(mcus / interval):,} restart "
                        "intervals"
                    )
            pos = end.start()
    if blocks and not arithmetic and scan_bytes * 8 < blocks:
        raise BadInput(
            f"the JPEG image is damaged or truncated: its scans hold {scan_bytes:,} bytes, "
            f"too few for the {blocks:,} blocks its header claims (at least one bit each)"
        )


#: libjpeg's warnings that a scan ended before the pixels its frame claims (the rest would
#: be filled with grey): JWRN_HIT_MARKER and JWRN_JPEG_EOF.
_TRUNCATION = ("premature end of data segment", "premature end of jpeg file")


def _strict(data: bytes, colorspace: str, width: int, height: int) -> np.ndarray | None:
    try:
        image: np.ndarray = simplejpeg.decode_jpeg(
            data, colorspace=colorspace, min_width=width, min_height=height, strict=True
        )
    except ValueError as exc:
        reason = str(exc)
        if any(words in reason.lower() for words in _TRUNCATION):
            raise BadInput(
                f"the JPEG image is damaged or truncated: a scan ends before its last block "
                f"({reason})"
            ) from None
        return None  # another warning or error: the lenient decoders decide, as before
    return image


def decode_checked(data: bytes, size: tuple[int, int], scale: int) -> np.ndarray | None:
    """The JPEG of ``size`` (its full width and height) decoded to RGB at DCT ``scale`` (1, 2,
    4 or 8) by libjpeg-turbo, the same pixels as OpenCV's and Pillow's reduced decodes;
    :class:`BadInput` when a scan runs out of data; None when libjpeg warns of anything else
    or the scale it took is not the one asked (the caller decodes leniently)."""
    width, height = math.ceil(size[0] / scale), math.ceil(size[1] / scale)
    rgb = _strict(data, "RGB", width, height)
    if rgb is None or rgb.shape != (height, width, 3):
        return None
    return rgb


def check_complete(data: bytes, mode: str) -> None:
    """:class:`BadInput` when a scan of the JPEG runs out of data before its last block, found
    by decoding it at 1/8 scale (the Huffman decoding is the whole cost): for files the
    lenient decoders decode (rotated by EXIF, CMYK), which never tell."""
    _strict(data, "CMYK" if mode == "CMYK" else "GRAY", 1, 1)
