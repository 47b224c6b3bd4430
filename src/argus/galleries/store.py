"""Galleries in the database: create, enrol, forget, delete, set the threshold, read.

Every change runs in one write transaction that also writes its audit event (who, what, why)
and moves the galleries' generation counter, which servers poll to reload what they hold in
memory (:mod:`argus.galleries.matcher`). Only embeddings are stored, never a photo unless the
enrolment asks to keep it; ``forget`` deletes every row of a person, photos included.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from argus.contracts import GALLERY_NAME
from argus.db.schema import App, Gallery, GalleryEvent, GalleryFace, GalleryState
from argus.errors import BadInput, Conflict, NotFound
from argus.models.transactions import run_write

MAX_PERSON = 200
MAX_REASON = 500
#: OpenCV's cosine threshold for "same person" with SFace, the default of a new gallery.
DEFAULT_THRESHOLD = 0.363
#: How many embeddings one person may hold (enough photos for any pose; bounds a gallery).
MAX_FACES_PER_PERSON = 100


def check_gallery_name(name: str) -> str:
    if not isinstance(name, str) or not GALLERY_NAME.match(name):
        raise BadInput(
            f"gallery name {name!r} must be 1-100 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_person(person: str) -> str:
    """A person's name as given (trimmed): any letters, 1-200 characters, no control ones."""
    text = person.strip() if isinstance(person, str) else ""
    if not text:
        raise BadInput("a person's name must not be empty")
    if len(text) > MAX_PERSON:
        raise BadInput(f"a person's name is at most {MAX_PERSON} characters, not {len(text)}")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise BadInput("a person's name must not hold control characters")
    return text


def check_threshold(value: float) -> float:
    if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise BadInput(f"a gallery's threshold is a cosine similarity from 0 to 1, not {value!r}")
    return float(value)


def check_reason(reason: str | None) -> str | None:
    if reason is not None and len(reason) > MAX_REASON:
        raise BadInput(f"a reason is at most {MAX_REASON} characters")
    return reason or None


@dataclass(frozen=True)
class Enrolment:
    """One face to store: its unit vector, the embedding model's digest, where it came from."""

    embedding: np.ndarray
    model_digest: str
    photo_sha256: str
    face: int
    photo: bytes | None = None


@dataclass(frozen=True)
class GalleryInfo:
    name: str
    app: str | None
    threshold: float
    created_by: str
    created_at: datetime
    people: dict[str, int] = field(default_factory=dict)
    """Person → how many faces are enrolled."""
    photos_kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app": self.app,
            "threshold": self.threshold,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "people": [{"name": p, "faces": n} for p, n in sorted(self.people.items())],
            "faces": sum(self.people.values()),
            "photos_kept": self.photos_kept,
        }


@dataclass(frozen=True)
class GalleryRows:
    """A gallery's embeddings as arrays (what the matcher holds)."""

    name: str
    app: str | None
    threshold: float
    people: list[str]
    """Person of each row."""
    digests: list[str]
    """Embedding model digest of each row."""
    vectors: np.ndarray
    """n x d float32 (n may be 0)."""


def _event_dict(row: GalleryEvent) -> dict[str, Any]:
    return {
        "gallery": row.gallery,
        "action": row.action,
        "person": row.person,
        "actor": row.actor,
        "detail": row.detail,
        "at": row.created_at.isoformat(),
    }


class GalleryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- inside a write transaction ----------------------------------------------------

    @staticmethod
    def _gallery(session: Session, name: str) -> Gallery:
        row = session.scalar(select(Gallery).where(Gallery.name == name))
        if row is None:
            raise NotFound(f"no gallery named {name!r}; `argus gallery create {name}` makes one")
        return row

    @staticmethod
    def _changed(session: Session, gallery: str, action: str, actor: str,
                 person: str | None = None, **detail: Any) -> None:
        session.add(GalleryEvent(
            gallery=gallery, action=action, person=person, actor=actor,
            detail={k: v for k, v in detail.items() if v is not None},
        ))
        moved = session.execute(
            update(GalleryState).where(GalleryState.id == 1)
            .values(generation=GalleryState.generation + 1)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.add(GalleryState(id=1, generation=1))

    # -- changes -----------------------------------------------------------------------

    def create(self, name: str, *, app: str | None = None,
               threshold: float = DEFAULT_THRESHOLD, actor: str = "",
               reason: str | None = None) -> GalleryInfo:
        check_gallery_name(name)
        threshold = check_threshold(threshold)
        reason = check_reason(reason)

        def work(session: Session) -> None:
            if session.scalar(select(Gallery.id).where(Gallery.name == name)) is not None:
                raise Conflict(f"gallery {name!r} exists already")
            if app is not None and session.scalar(select(App.id).where(App.name == app)) is None:
                raise NotFound(f"no app named {app!r}; `argus apps add {app}` makes one")
            session.add(Gallery(name=name, app=app, threshold=threshold, created_by=actor))
            self._changed(session, name, "create", actor, app=app, threshold=threshold,
                          reason=reason)

        run_write(self.engine, work)
        return self.show(name)

    def delete(self, name: str, *, actor: str = "", reason: str | None = None) -> int:
        """Remove a gallery and every face in it; returns how many faces went."""
        reason = check_reason(reason)

        def work(session: Session) -> int:
            row = self._gallery(session, name)
            gone = session.execute(delete(GalleryFace).where(GalleryFace.gallery_id == row.id))
            session.delete(row)
            count = int(gone.rowcount or 0)  # type: ignore[attr-defined]
            self._changed(session, name, "delete", actor, faces=count, reason=reason)
            return count

        return run_write(self.engine, work)

    def set_threshold(self, name: str, threshold: float, *, actor: str = "",
                      reason: str | None = None) -> GalleryInfo:
        threshold = check_threshold(threshold)
        reason = check_reason(reason)

        def work(session: Session) -> None:
            row = self._gallery(session, name)
            before = row.threshold
            row.threshold = threshold
            self._changed(session, name, "threshold", actor, before=before, after=threshold,
                          reason=reason)

        run_write(self.engine, work)
        return self.show(name)

    def enrol(self, name: str, person: str, faces: list[Enrolment], *, actor: str = "",
              reason: str | None = None) -> dict[str, Any]:
        """Store ``faces`` as ``person``'s (all or none); returns what was stored."""
        person = check_person(person)
        reason = check_reason(reason)
        if not faces:
            raise BadInput("enrolling needs at least one face")
        rows = []
        for face in faces:
            vector = np.asarray(face.embedding, dtype="<f4").reshape(-1)
            if vector.size == 0 or not np.isfinite(vector).all():
                raise BadInput("an embedding must be a non-empty vector of finite numbers")
            rows.append((face, (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype("<f4")))

        def work(session: Session) -> dict[str, Any]:
            gallery = self._gallery(session, name)
            held = session.scalar(
                select(func.count()).select_from(GalleryFace)
                .where(GalleryFace.gallery_id == gallery.id, GalleryFace.person == person)
            ) or 0
            if held + len(rows) > MAX_FACES_PER_PERSON:
                raise Conflict(
                    f"{person!r} would hold {held + len(rows)} faces in {name!r}; at most "
                    f"{MAX_FACES_PER_PERSON} (forget some first)"
                )
            for face, vector in rows:
                session.add(GalleryFace(
                    gallery_id=gallery.id, person=person, embedding=vector.tobytes(),
                    model_digest=face.model_digest, photo_sha256=face.photo_sha256,
                    face=face.face, photo=face.photo,
                ))
            photos = sorted({face.photo_sha256 for face, _ in rows})
            kept = sum(1 for face, _ in rows if face.photo is not None)
            self._changed(session, name, "enrol", actor, person, faces=len(rows),
                          photos=photos, photos_kept=kept, reason=reason)
            return {"gallery": name, "person": person, "enrolled": len(rows),
                    "faces": held + len(rows), "photos": photos, "photos_kept": kept}

        return run_write(self.engine, work)

    def forget(self, name: str, person: str, *, actor: str = "",
               reason: str | None = None) -> int:
        """Delete every embedding (and kept photo) of ``person``; returns how many went."""
        # Not check_person: a name that could never be enrolled is simply no one here (404).
        person = person.strip() if isinstance(person, str) else ""
        reason = check_reason(reason)

        def work(session: Session) -> int:
            gallery = self._gallery(session, name)
            gone = session.execute(
                delete(GalleryFace)
                .where(GalleryFace.gallery_id == gallery.id, GalleryFace.person == person)
            )
            count = int(gone.rowcount or 0)  # type: ignore[attr-defined]
            if count == 0:
                raise NotFound(f"gallery {name!r} holds no one named {person!r}")
            self._changed(session, name, "forget", actor, person, faces=count, reason=reason)
            return count

        return run_write(self.engine, work)

    # -- reading -----------------------------------------------------------------------

    def generation(self) -> int:
        with Session(self.engine) as session:
            value = session.scalar(select(GalleryState.generation).where(GalleryState.id == 1))
            return int(value or 0)

    def names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Gallery.name).order_by(Gallery.name)))

    def show(self, name: str) -> GalleryInfo:
        with Session(self.engine) as session:
            row = self._gallery(session, name)
            counts = session.execute(
                select(GalleryFace.person, func.count())
                .where(GalleryFace.gallery_id == row.id).group_by(GalleryFace.person)
            ).all()
            kept = session.scalar(
                select(func.count()).select_from(GalleryFace)
                .where(GalleryFace.gallery_id == row.id, GalleryFace.photo.is_not(None))
            ) or 0
            return GalleryInfo(row.name, row.app, row.threshold, row.created_by,
                               row.created_at, {p: int(n) for p, n in counts}, int(kept))

    def all(self) -> list[GalleryInfo]:
        return [self.show(name) for name in self.names()]

    def history(self, name: str, limit: int = 200) -> list[dict[str, Any]]:
        """The gallery's audit events, newest first (they outlive a deleted gallery)."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(GalleryEvent).where(GalleryEvent.gallery == name)
                .order_by(GalleryEvent.id.desc()).limit(limit)
            )
            return [_event_dict(r) for r in rows]

    def rows(self, name: str) -> GalleryRows:
        with Session(self.engine) as session:
            gallery = self._gallery(session, name)
            found = session.execute(
                select(GalleryFace.person, GalleryFace.model_digest, GalleryFace.embedding)
                .where(GalleryFace.gallery_id == gallery.id).order_by(GalleryFace.id)
            ).all()
        dims = {len(blob) for _, _, blob in found}
        if len(dims) > 1:  # vectors of models of different widths: keep each row's own
            width = max(dims) // 4
            vectors = np.zeros((len(found), width), dtype=np.float32)
            for i, (_, _, blob) in enumerate(found):
                v = np.frombuffer(blob, dtype="<f4")
                vectors[i, : v.size] = v
        elif found:
            vectors = np.frombuffer(b"".join(b for _, _, b in found), dtype="<f4").reshape(
                len(found), -1).astype(np.float32)
        else:
            vectors = np.zeros((0, 0), dtype=np.float32)
        return GalleryRows(gallery.name, gallery.app, gallery.threshold,
                           [p for p, _, _ in found], [d for _, d, _ in found], vectors)
