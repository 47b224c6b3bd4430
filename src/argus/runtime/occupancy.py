"""How many requests this server's models hold right now (queued or running, across its
worker processes): the inference of a lone request may use every core.

Under load each call keeps to its share of the cores (workers x lanes x threads = cores), which
gives the most images per second. A lone request would then leave cores idle; with the count
it runs on all of them instead, which is what a quiet server's latency needs. ``argus serve
--workers N`` shares one counter between its processes (``share``); otherwise it counts the
calls of this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Occupancy:
    def __init__(self) -> None:
        self._lock: Any = threading.Lock()
        self._shared: Any = None
        self._local = 0

    def share(self, value: Any) -> None:
        """Count in ``value`` (a ``multiprocessing.Value('i')`` made by the supervisor)."""
        self._shared = value
        self._lock = value.get_lock()

    @property
    def now(self) -> int:
        with self._lock:
            return int(self._shared.value) if self._shared is not None else self._local

    @contextmanager
    def running(self) -> Iterator[int]:
        """Count one request while the block runs; yields the count including it."""
        with self._lock:
            if self._shared is not None:
                self._shared.value += 1
                count = int(self._shared.value)
            else:
                self._local += 1
                count = self._local
        try:
            yield count
        finally:
            with self._lock:
                if self._shared is not None:
                    self._shared.value -= 1
                else:
                    self._local -= 1


OCCUPANCY = Occupancy()
"""The process's counter (shared with the other workers of ``argus serve --workers N``)."""
