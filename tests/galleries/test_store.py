"""Galleries in a real database (SQLite and PostgreSQL): every change audited and moving the
generation; forget deletes every row of a person; names, thresholds and apps checked."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from argus.db.engine import make_engine, migrate
from argus.db.schema import GalleryFace
from argus.errors import BadInput, Conflict, NotFound
from argus.galleries.store import DEFAULT_THRESHOLD, Enrolment, GalleryStore
from argus.models.apps import AppPins


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def face(seed: int, photo: bytes | None = None) -> Enrolment:
    return Enrolment(unit(seed), "sha256:model", f"{seed:064x}", 0, photo)


@pytest.fixture
def store(db_url: str) -> GalleryStore:
    engine = make_engine(db_url)
    migrate(engine)
    return GalleryStore(engine)


def test_create_enrol_forget_are_audited_and_move_the_generation(store: GalleryStore) -> None:
    g0 = store.generation()
    info = store.create("staff", actor="alice", reason="front desk")
    assert info.threshold == DEFAULT_THRESHOLD and info.people == {}
    store.enrol("staff", "Grace Hopper", [face(1), face(2, b"photo")], actor="alice")
    store.enrol("staff", "Alan Turing", [face(3)], actor="bob", reason="new hire")
    shown = store.show("staff")
    assert shown.people == {"Grace Hopper": 2, "Alan Turing": 1} and shown.photos_kept == 1
    assert store.generation() == g0 + 3
    assert store.forget("staff", "Grace Hopper", actor="carol", reason="asked to") == 2
    assert store.show("staff").people == {"Alan Turing": 1}
    with Session(store.engine) as session:  # the rows are gone, the kept photo with them
        left = session.scalar(select(func.count()).select_from(GalleryFace)
                              .where(GalleryFace.person == "Grace Hopper"))
    assert left == 0
    events = store.history("staff")
    assert [e["action"] for e in events] == ["forget", "enrol", "enrol", "create"]
    assert events[0]["actor"] == "carol" and events[0]["person"] == "Grace Hopper"
    assert events[0]["detail"] == {"faces": 2, "reason": "asked to"}
    assert events[1]["detail"]["reason"] == "new hire"
    assert store.generation() == g0 + 4


def test_rows_are_the_unit_vectors_enrolled(store: GalleryStore) -> None:
    store.create("lab")
    store.enrol("lab", "a", [face(1)])
    store.enrol("lab", "b", [face(2), face(3)])
    rows = store.rows("lab")
    assert rows.people == ["a", "b", "b"]
    assert np.allclose(rows.vectors, np.stack([unit(1), unit(2), unit(3)]))
    assert store.rows("lab").vectors.dtype == np.float32


def test_mistakes_are_refused_with_the_reason(store: GalleryStore) -> None:
    store.create("staff")
    with pytest.raises(Conflict, match="exists already"):
        store.create("staff")
    with pytest.raises(BadInput, match="gallery name"):
        store.create("Bad Name")
    with pytest.raises(BadInput, match="from 0 to 1"):
        store.create("other", threshold=1.5)
    with pytest.raises(NotFound, match="no app named 'kiosk'"):
        store.create("kiosk-staff", app="kiosk")
    with pytest.raises(NotFound, match="no gallery named 'nobody'"):
        store.enrol("nobody", "x", [face(1)])
    with pytest.raises(BadInput, match="must not be empty"):
        store.enrol("staff", "  ", [face(1)])
    with pytest.raises(BadInput, match="control characters"):
        store.enrol("staff", "a\x00b", [face(1)])
    with pytest.raises(NotFound, match="holds no one named"):
        store.forget("staff", "Ghost")
    bad = Enrolment(np.array([np.nan, 1.0], np.float32), "d", "0" * 64, 0)
    with pytest.raises(BadInput, match="finite"):
        store.enrol("staff", "x", [bad])
    assert store.show("staff").people == {}  # nothing half-written


def test_an_app_gallery_threshold_and_delete(store: GalleryStore) -> None:
    AppPins(store.engine).add("kiosk")
    info = store.create("door", app="kiosk", threshold=0.5)
    assert info.app == "kiosk" and info.threshold == 0.5
    assert store.set_threshold("door", 0.42, actor="al", reason="fewer misses").threshold == 0.42
    store.enrol("door", "x", [face(1)])
    assert store.delete("door", actor="al", reason="closed") == 1
    assert "door" not in store.names()
    actions = [e["action"] for e in store.history("door")]
    assert actions == ["delete", "enrol", "threshold", "create"]  # the trail outlives it
