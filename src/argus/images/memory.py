"""Handing freed memory back to the operating system after a large image.

glibc's allocator keeps freed heap memory for reuse, and raises its mmap threshold after a
large block is freed, so after one big decode or face pyramid the process keeps hundreds of
megabytes it no longer uses. ``malloc_trim`` returns the free pages; elsewhere (musl, macOS)
it is absent and this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import weakref
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_memory() -> bool:
    """Return free heap pages to the OS; True when the C library could."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


_pending: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def release_memory_soon(delay: float = 0.2) -> None:
    """Release memory on a worker thread ``delay`` seconds from now, once however many large
    requests ask meanwhile: by then the request that asked has answered and dropped its
    image, its body and its results, which a release made at once would miss."""
    loop = asyncio.get_running_loop()
    if loop in _pending:
        return
    _pending.add(loop)

    def start() -> None:
        _pending.discard(loop)
        # A loop shutting down refuses new work: the process is about to end anyway.
        with contextlib.suppress(RuntimeError):
            loop.run_in_executor(None, release_memory)

    loop.call_later(delay, start)
