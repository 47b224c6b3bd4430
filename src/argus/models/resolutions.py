"""Registry resolutions cached until the registry changes: the one cache the image API, the
KServe data plane and the question catalogue share.

Every registry change bumps a generation counter in the database. A process asks for it at
most every ``CHECK_SECONDS`` and drops what it cached when it moved, so an alias move reaches
every process within a second, while requests in flight finish on the version they resolved.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from argus.models.registry import ModelRegistry
from argus.models.versions import VersionInfo, canary_bucket

CHECK_SECONDS = 0.25
MAX_ENTRIES = 4096
T = TypeVar("T")


class Resolutions:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._versions: OrderedDict[Hashable, VersionInfo] = OrderedDict()
        self._derived: dict[Hashable, object] = {}
        self._generation = -1
        self._checked = 0.0
        self.changes = 0
        """How many times the registry was seen to move (a caller compares it with the count it
        last acted on)."""

    def fresh(self) -> bool:
        """True while what is cached was checked against the registry less than
        ``CHECK_SECONDS`` ago (a caller on the event loop may then skip the database)."""
        return time.monotonic() - self._checked <= CHECK_SECONDS

    def refresh(self, force: bool = False) -> bool:
        """Drop everything cached if the registry moved; returns True when it did."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_SECONDS:
            return False
        self._checked = now
        generation = self.registry.generation()
        if generation != self._generation:
            self._generation = generation
            self._versions.clear()
            self._derived.clear()
            self.changes += 1
            return True
        return False

    def resolve(
        self,
        name: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        app: str | None = None,
        route_key: str = "",
    ) -> VersionInfo:
        """``ModelRegistry.resolve``, cached. A canary share depends on the routing key only
        through its bucket, so entries are kept per bucket."""
        self.refresh()
        key = (name, version, alias, app, canary_bucket(route_key) if route_key else None)
        hit = self._versions.get(key)
        if hit is not None:
            return hit
        info = self.registry.resolve(
            name, version=version, alias=alias, app=app, route_key=route_key or None
        )
        self._versions[key] = info
        if len(self._versions) > MAX_ENTRIES:
            self._versions.popitem(last=False)
        return info

    def peek(self, name: str, version: int | None = None, alias: str | None = None
             ) -> VersionInfo | None:
        """A cached resolution without asking the database (None when there is none)."""
        return self._versions.get((name, version, alias, None, None))

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """A value computed from the registry (e.g. a model's own question), cached for as long
        as the resolutions are."""
        self.refresh()
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]  # type: ignore[return-value]
