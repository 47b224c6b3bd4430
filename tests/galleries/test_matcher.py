"""Exact cosine search over a gallery held in memory, refreshed when the generation moves."""

from __future__ import annotations

import time

import numpy as np
import pytest

from argus.db.engine import make_engine, migrate
from argus.errors import Forbidden
from argus.galleries import matcher
from argus.galleries.matcher import Galleries, GalleryIndex
from argus.galleries.store import Enrolment, GalleryRows, GalleryStore


def index(people: list[str], vectors: np.ndarray, threshold: float = 0.5,
          digests: list[str] | None = None, app: str | None = None) -> GalleryIndex:
    rows = GalleryRows("g", app, threshold, people, digests or ["m"] * len(people), vectors)
    return GalleryIndex.from_rows(rows, 1)


def test_the_nearest_person_is_named_at_or_above_the_threshold() -> None:
    eye = np.eye(4, dtype=np.float32)
    g = index(["a", "b", "b"], eye[:3])
    q = np.stack([eye[0], (eye[1] + eye[3]) / np.sqrt(2), eye[3]])
    found = g.search(q, "m")
    assert [m.name for m in found] == ["a", "b", None]
    assert found[0].similarity == pytest.approx(1.0)
    assert found[1].similarity == pytest.approx(0.7071, abs=1e-4)
    assert found[2].similarity == pytest.approx(0.0)


def test_only_vectors_of_the_same_model_are_compared() -> None:
    eye = np.eye(3, dtype=np.float32)
    g = index(["old", "new"], eye[:2], digests=["m1", "m2"])
    assert [m.name for m in g.search(eye[:1], "m2")] == [None]
    assert g.search(eye[1:2], "m2")[0].name == "new"
    assert g.stale("m2") == 1
    assert g.search(eye[:1], "m3") == [matcher.Match(None, None)]


def test_an_app_gallery_refuses_other_apps() -> None:
    g = index(["a"], np.eye(2, dtype=np.float32)[:1], app="kiosk")
    g.allow("kiosk")
    with pytest.raises(Forbidden, match="belongs to app 'kiosk'"):
        g.allow("web")
    with pytest.raises(Forbidden, match="no app"):
        g.allow(None)
    index(["a"], np.eye(2, dtype=np.float32)[:1]).allow(None)  # no app: every app's


def test_a_change_reaches_the_held_gallery_once_the_generation_moves(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/g.db")
    migrate(engine)
    store = GalleryStore(engine)
    store.create("g")
    vec = np.array([1.0, 0.0], np.float32)
    store.enrol("g", "a", [Enrolment(vec, "m", "0" * 64, 0)])
    held = Galleries(store)
    assert held.get("g").search(vec[None], "m")[0].name == "a"
    other = GalleryStore(engine)  # another process's writes
    other.forget("g", "a")
    time.sleep(matcher.CHECK_SECONDS + 0.05)
    assert held.get("g").search(vec[None], "m")[0].name is None
