"""The request's image as the steps of a graph share it: decoded at most once per scale a
model asks for, only when some step has to run, and within the question's pixel budget."""

from __future__ import annotations

import asyncio
import threading
import time

from PIL import Image

from argus.futures import chain
from argus.images.decode import (
    DecodedImage,
    DecodeSize,
    Limits,
    check_budget,
    decode,
    decode_scale,
    open_image,
)
from argus.images.jpeg import check_jpeg
from argus.images.memory import release_memory_soon

# A question that decoded more pixels than this, or was sent more bytes, hands the freed
# memory back to the OS when it ends (glibc keeps freed heap memory otherwise, and a few
# large images would pin it).
RELEASE_AFTER_PIXELS = 2_000_000
RELEASE_AFTER_BYTES = 4 * 1024 * 1024

Want = DecodeSize | int | None


class ImageSource:
    """The request's image, decoded at most once per DCT scale and only when needed.

    Steps ask for a :class:`DecodeSize` (or a minimum side); sizes that come to the same
    decode share it, so a PNG is decoded once whatever its steps ask. The pixels decoded are
    counted against ``limits.question_pixels``.
    """

    def __init__(
        self, data: bytes, sha256: str, limits: Limits, header: Image.Image | None = None
    ) -> None:
        self.data = data
        self.sha256 = sha256
        self.limits = limits
        self.decode_ms = 0.0
        self.pixels = 0  # decoded so far, over every scale
        self._lock = threading.Lock()  # lanes may decode two sizes of one image at once
        self._opened = header  # the header, when the caller has already read it
        self._header: Image.Image | None = None
        self._decoded: dict[int, asyncio.Future[DecodedImage]] = {}

    def _open(self) -> Image.Image:
        """The image's header, read once (raises its error: not an image, too large,
        a damaged JPEG)."""
        if self._header is None:
            header = self._opened or open_image(self.data, self.limits)
            if header.format in ("JPEG", "MPO"):
                check_jpeg(self.data)
            self._header = header
        return self._header

    def _scale(self, want: Want) -> int:
        """The DCT scale a size comes to."""
        return decode_scale(self._open(), DecodeSize.of(want))

    def decode_now(self, want: Want) -> DecodedImage:
        """Decode on the calling thread (``get`` runs this on a worker thread; a step that
        claimed this size runs it on its inference lane)."""
        started = time.perf_counter()
        size = DecodeSize.of(want)
        header = self._open()
        scale = decode_scale(header, size)
        with self._lock:  # reserve the pixels before spending them
            self.pixels += check_budget(header, scale, self.limits.question_pixels, self.pixels)
        image = decode(self.data, self.limits, size, sha256=self.sha256)
        with self._lock:
            self.decode_ms += (time.perf_counter() - started) * 1000
        return image

    async def get(self, want: Want) -> DecodedImage:
        key = self._scale(want)
        future = self._decoded.get(key)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(self.decode_now, want))
            self._decoded[key] = future
        # Shielded: one step giving up must not cancel a decode other steps wait for.
        return await asyncio.shield(future)

    def decoding(self, want: Want) -> asyncio.Future[DecodedImage] | None:
        """The decode of this size, done or under way, if any step asked for it."""
        return self._decoded.get(self._scale(want))

    def claim(self, want: Want) -> asyncio.Future[DecodedImage]:
        """Promise the decode of this size: the caller decodes it (on whatever thread suits)
        and settles the future on the event loop; other steps wait for it meanwhile."""
        future: asyncio.Future[DecodedImage] = asyncio.get_running_loop().create_future()
        self._decoded[self._scale(want)] = future
        return future

    def unclaim(self, want: Want, claimed: asyncio.Future[DecodedImage]) -> None:
        """Give a claimed size back undecoded: steps waiting for it decode it themselves."""
        key = self._scale(want)
        if self._decoded.get(key) is claimed:
            del self._decoded[key]
        if not claimed.done():
            asyncio.ensure_future(self.get(want)).add_done_callback(
                lambda f: chain(f, claimed)
            )

    def close(self) -> None:
        """Drop the decoded images; after a large question, give the memory back (soon:
        once the answer is out and the request's buffers are freed)."""
        self._decoded.clear()
        self._header = None
        if self.pixels >= RELEASE_AFTER_PIXELS or len(self.data) >= RELEASE_AFTER_BYTES:
            release_memory_soon()
