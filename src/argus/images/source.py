"""The request's image as the steps of a graph share it: decoded at most once per size a
model asks for, and only when some step has to run."""

from __future__ import annotations

import asyncio
import threading
import time

from argus.futures import chain
from argus.images.decode import DecodedImage, Limits, decode


class ImageSource:
    """The request's image, decoded at most once per ``min_side`` and only when needed."""

    def __init__(self, data: bytes, sha256: str, limits: Limits) -> None:
        self.data = data
        self.sha256 = sha256
        self.limits = limits
        self.decode_ms = 0.0
        self._ms_lock = threading.Lock()  # lanes may decode two sizes of one image at once
        self._decoded: dict[int | None, asyncio.Future[DecodedImage]] = {}

    def decode_now(self, min_side: int | None) -> DecodedImage:
        """Decode on the calling thread (``get`` runs this on a worker thread; a step that
        claimed this size runs it on its inference lane)."""
        started = time.perf_counter()
        image = decode(self.data, self.limits, min_side, sha256=self.sha256)
        with self._ms_lock:
            self.decode_ms += (time.perf_counter() - started) * 1000
        return image

    async def get(self, min_side: int | None) -> DecodedImage:
        future = self._decoded.get(min_side)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(self.decode_now, min_side))
            self._decoded[min_side] = future
        # Shielded: one step giving up must not cancel a decode other steps wait for.
        return await asyncio.shield(future)

    def decoding(self, min_side: int | None) -> asyncio.Future[DecodedImage] | None:
        """The decode of this size, done or under way, if any step asked for it."""
        return self._decoded.get(min_side)

    def claim(self, min_side: int | None) -> asyncio.Future[DecodedImage]:
        """Promise the decode of this size: the caller decodes it (on whatever thread suits)
        and settles the future on the event loop; other steps wait for it meanwhile."""
        future: asyncio.Future[DecodedImage] = asyncio.get_running_loop().create_future()
        self._decoded[min_side] = future
        return future

    def unclaim(self, min_side: int | None, claimed: asyncio.Future[DecodedImage]) -> None:
        """Give a claimed size back undecoded: steps waiting for it decode it themselves."""
        if self._decoded.get(min_side) is claimed:
            del self._decoded[min_side]
        if not claimed.done():
            asyncio.ensure_future(self.get(min_side)).add_done_callback(
                lambda f: chain(f, claimed)
            )
