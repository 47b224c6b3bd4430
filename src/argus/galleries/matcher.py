"""Galleries held in memory, matched by exact cosine search in numpy.

A process loads a gallery when it is first asked of, and keeps it until the galleries'
generation counter moves (checked at most every ``CHECK_SECONDS``, like registry moves), so an
enrolment or a ``forget`` reaches every server within a second. Vectors are unit length, so the
cosine similarity of a face with every enrolled one is one matrix product; the nearest row names
the person when its similarity reaches the gallery's threshold. Only rows made by the same
embedding model as the asked face take part (vectors of two models are not comparable).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from argus.errors import Forbidden
from argus.galleries.store import GalleryRows, GalleryStore

CHECK_SECONDS = 0.25
#: Galleries one process holds at once (least recently asked of first out).
MAX_HELD = 64


@dataclass(frozen=True)
class Match:
    name: str | None
    """The person, when the nearest enrolled face reaches the threshold (else None: unknown)."""
    similarity: float | None
    """Cosine similarity of the nearest enrolled face (None: nothing to compare with)."""


@dataclass(frozen=True)
class GalleryIndex:
    """One gallery's vectors, ready to search; immutable (a change makes a new one)."""

    name: str
    app: str | None
    threshold: float
    generation: int
    people: np.ndarray
    """Person of each row (object array)."""
    digests: np.ndarray
    vectors: np.ndarray
    """n x d float32, unit rows."""

    @classmethod
    def from_rows(cls, rows: GalleryRows, generation: int) -> GalleryIndex:
        return cls(rows.name, rows.app, rows.threshold, generation,
                   np.asarray(rows.people, dtype=object), np.asarray(rows.digests, dtype=object),
                   np.ascontiguousarray(rows.vectors, dtype=np.float32))

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes)

    def allow(self, app: str | None) -> None:
        """Refuse a request of another application (a gallery with no app is every app's)."""
        if self.app is not None and app != self.app:
            asked = f"app {app!r}" if app else "no app"
            raise Forbidden(
                f"gallery {self.name!r} belongs to app {self.app!r}; this request names {asked} "
                "(X-Argus-App, --app)"
            )

    def search(self, queries: np.ndarray, model_digest: str) -> list[Match]:
        """The nearest enrolled person of each query row (unit vectors of ``model_digest``)."""
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or len(queries) == 0:
            return []
        rows = np.flatnonzero(self.digests == model_digest)
        if len(rows) == 0:
            return [Match(None, None) for _ in range(len(queries))]
        width = queries.shape[1]
        # All rows when every one is of this model (the usual case): no copy of the matrix.
        matrix = self.vectors if len(rows) == len(self.vectors) else self.vectors[rows]
        sims = queries @ matrix[:, :width].T
        best = np.argmax(sims, axis=1)
        out = []
        for q, b in enumerate(best):
            similarity = float(sims[q, b])
            name = str(self.people[rows[b]]) if similarity >= self.threshold else None
            out.append(Match(name, round(similarity, 4)))
        return out

    def stale(self, model_digest: str) -> int:
        """Rows made by another embedding model, which this search cannot use."""
        return int(np.count_nonzero(self.digests != model_digest))


class Galleries:
    """The galleries this process holds, kept fresh by the generation counter."""

    def __init__(self, store: GalleryStore) -> None:
        self.store = store
        self._held: dict[str, GalleryIndex] = {}
        self._generation = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < CHECK_SECONDS:
            return
        generation = self.store.generation()
        with self._lock:
            self._checked = now
            if generation != self._generation:
                self._generation = generation
                self._held.clear()

    def get(self, name: str) -> GalleryIndex:
        """The gallery ``name`` (NotFound when there is none), loaded once per generation."""
        self.refresh()
        with self._lock:
            held = self._held.pop(name, None)
            generation = self._generation
        if held is None:
            held = GalleryIndex.from_rows(self.store.rows(name), generation)
        with self._lock:
            if generation == self._generation:
                self._held[name] = held  # most recently used last
                while len(self._held) > MAX_HELD:
                    self._held.pop(next(iter(self._held)))
        return held

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"held": len(self._held), "bytes": sum(g.nbytes for g in self._held.values()),
                    "generation": self._generation}
