"""How many requests this server's models hold right now (queued or running, across its
worker processes): the inference of a lone request may use every core.

Under load each call keeps to its share of the cores (workers x lanes x threads = cores), which
gives the most images per second. A lone request would then leave cores idle; with the count
it runs on all of them instead, which is what a quiet server's latency needs.

``argus serve --workers N`` gives its workers one shared array with a slot each (``share``):
a worker writes only its own slot and reads the sum, so no lock is held across processes, and
a worker that dies is replaced with its slot set back to zero without touching the others'.
Otherwise the count is this process's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Occupancy:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # this process's updates of its own slot
        self._slots: Any = [0]
        self._index = 0

    def share(self, slots: Any, index: int) -> None:
        """Count in ``slots[index]`` of a ``multiprocessing.Array('i', N, lock=False)`` made by
        the supervisor; ``now`` is the sum over every worker's slot."""
        self._slots = slots
        self._index = index

    @property
    def now(self) -> int:
        """Requests held now (a racy but harmless read: each slot is one aligned int)."""
        return int(sum(self._slots))

    @contextmanager
    def running(self) -> Iterator[int]:
        """Count one request while the block runs; yields the count including it."""
        with self._lock:
            self._slots[self._index] += 1
        try:
            yield self.now
        finally:
            with self._lock:
                self._slots[self._index] -= 1


OCCUPANCY = Occupancy()
"""The process's counter (shared with the other workers of ``argus serve --workers N``)."""
