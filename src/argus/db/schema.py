"""Tables. Every change here needs an Alembic migration in ``argus/migrations/versions``
(``tests/test_migrations.py`` fails when the two disagree)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(40))
    last_number: Mapped[int] = mapped_column(Integer, default=0)
    """Highest version number ever given out; numbers are never reused after a removal."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_version_number"),
        UniqueConstraint("model_id", "digest", name="uq_version_digest"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(80))
    task: Mapped[str] = mapped_column(String(40))
    source: Mapped[dict[str, Any]] = mapped_column(default=dict)
    license: Mapped[str] = mapped_column(String(200), default="")
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    training_data_digest: Mapped[str | None] = mapped_column(String(80), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alias(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name", name="uq_alias_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    percent: Mapped[int] = mapped_column(Integer, default=100)
    """Share of un-pinned traffic (used by the ``canary`` alias)."""
    revision: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every move; a move names the revision it saw, so concurrent moves conflict."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(40))
    alias: Mapped[str | None] = mapped_column(String(100), nullable=True)
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AppPin(Base):
    __tablename__ = "app_pins"
    __table_args__ = (UniqueConstraint("app_id", "model_id", name="uq_app_pin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    alias: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegistryState(Base):
    """One row whose counter moves on every registry change; servers poll it to reload."""

    __tablename__ = "registry_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")


class PredictionRecord(Base):
    """What was asked, of which image, by which exact model versions, with what answer."""

    __tablename__ = "prediction_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(String(200), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    models: Mapped[list[Any]] = mapped_column(default=list)
    answer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(20))
    """http, grpc, cli, job or ingest."""
    app: Mapped[str | None] = mapped_column(String(200), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class Job(Base):
    """A question asked now and answered later by a worker holding a lease."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "priority", "run_after"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    question: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """queued, running, done, failed (will retry), dead (out of attempts) or cancelled."""
    priority: Mapped[int] = mapped_column(Integer, default=0)
    """Higher runs first."""
    image_sha256: Mapped[str] = mapped_column(String(64))
    image_bytes: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """How far a long job (training) has got: stage, done, total; written while it runs."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Callback(Base):
    """The outbox of job callbacks: written in the transaction that marks the job done, so
    a callback cannot be lost when a worker dies after answering; any worker delivers it
    (at least once, with retries and backoff) under a short lease."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "status", "next_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40), index=True)
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    """The exact JSON bytes sent (and signed), kept so every retry sends the same."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (to send or retry), delivered, or failed (out of attempts, or refused)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReviewItem(Base):
    """An image kept for review: a classify answer below the keep-uncertain threshold, or one
    on which a running canary and production disagreed. Its bytes live content-addressed under
    ``<home>/review``; a label files a copy into the model's dataset folder."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_model_created", "model", "created_at"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The image's sha256 (hex): an image is kept once, for the first model that kept it."""
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(200))
    guess: Mapped[str] = mapped_column(String(200))
    """The model's top label."""
    score: Mapped[float] = mapped_column(Float)
    """Its score."""
    reason: Mapped[str] = mapped_column(String(16), index=True)
    """uncertain (top score under the threshold) or disagreement (canary and production)."""
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The answer's top labels, the threshold, and the other side's guess on a disagreement."""
    format: Mapped[str] = mapped_column(String(8))
    """File extension of the detected image format (jpg, png, webp, bmp, gif)."""
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    app: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The class a person gave it (null until labelled)."""
    labelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    filed: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The file the label wrote (``<dataset>/<label>/<digest>.<ext>``), moved on a relabel."""


class Gallery(Base):
    """Named people to recognise (``who``): each with face embeddings, never photos unless
    asked. ``app`` set: only requests of that application may match against it."""

    __tablename__ = "galleries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    app: Mapped[str | None] = mapped_column(String(200), nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    """The cosine similarity at or above which the nearest person is named."""
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GalleryFace(Base):
    """One enrolled face: a unit vector from one photo, by the embedding model it came from
    (vectors of different models are not comparable)."""

    __tablename__ = "gallery_faces"
    __table_args__ = (Index("ix_gallery_faces_person", "gallery_id", "person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    person: Mapped[str] = mapped_column(String(200))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    """float32 little-endian, unit length."""
    model_digest: Mapped[str] = mapped_column(String(80))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    face: Mapped[int] = mapped_column(Integer)
    """Which face of the photo (in the detector's order)."""
    photo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The photo itself, only when the enrolment asked to keep it."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GalleryEvent(Base):
    """The audit trail of galleries: who changed which gallery, when, how and why."""

    __tablename__ = "gallery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    gallery: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(40))
    """create, enrol, forget, threshold or delete."""
    person: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GalleryState(Base):
    """One row whose counter moves on every gallery change; servers poll it to reload."""

    __tablename__ = "gallery_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
