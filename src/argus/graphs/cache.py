"""A bounded LRU of step results, keyed by what determines a step's result.

The key of a step is a digest of (image sha256, what the step does — model version digest or
op —, its parameters, and the keys of the steps it reads). A step name is not part of it, so
the ``labels`` step of ``describe`` and the ``labels`` question share entries.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from argus.errors import ConfigError
from argus.graphs.ops import StepOutput


def step_key(
    image_sha: str, what: str, params: Mapping[str, Any], upstream: Sequence[str] = ()
) -> str:
    payload = json.dumps(
        [image_sha, what, dict(params), list(upstream)], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def output_bytes(output: StepOutput) -> int:
    """A cheap estimate of what an entry holds: its crops' pixels plus its result's text."""
    size = sum(int(crop.nbytes) for crop in output.crops or [])
    stack: list[Any] = [output.result]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            size += 16 * len(value)
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            size += 8 * len(value)
            stack.extend(value)
        elif isinstance(value, str):
            size += len(value)
        else:
            size += 8
    return size


class StepCache:
    """Least-recently-used step outputs, bounded by entries and by bytes (crops and base64
    images make some entries large); ``max_entries`` 0 turns caching off.

    Used from the event loop only, so it needs no lock."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ConfigError(
                "the step cache bounds (ARGUS_CACHE_ENTRIES, ARGUS_CACHE_MB) must not be "
                f"negative, not {max_entries} entries and {max_bytes} bytes"
            )
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[StepOutput, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> StepOutput | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: str, output: StepOutput) -> None:
        if self.max_entries == 0:
            return
        size = output_bytes(output)
        if size > self.max_bytes:
            return  # one entry bigger than the whole budget is not worth keeping
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (output, size)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "max_entries": self.max_entries,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
        }
