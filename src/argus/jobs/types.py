"""Shared shapes of the job queue: the policy (leases, retries, callbacks), a job as read
back, a claimed job, and the prediction-record row built from an answer."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from argus.errors import BadInput, Forbidden
from argus.settings import Settings

STATUSES = ("queued", "running", "done", "failed", "dead", "cancelled")
WAITING = ("queued", "failed")  # failed = will run again after its backoff


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class JobPolicy:
    """How long leases last, how often a job is tried and where callbacks may go."""

    lease_seconds: float = 30.0
    max_attempts: int = 3
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    callback_hosts: tuple[str, ...] = ()
    callback_secret: str = field(default="", repr=False)
    callback_attempts: int = 12
    """Deliveries of one callback before it is marked failed (about an hour of backoff)."""
    callback_backoff_seconds: float = 1.0
    callback_timeout_seconds: float = 10.0
    """One callback POST's timeout; a delivery's lease is :attr:`callback_lease_seconds`."""

    @property
    def callback_lease_seconds(self) -> float:
        """A delivery's lease: longer than its HTTP timeout, so only a dead worker's lapses."""
        return 3 * self.callback_timeout_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> JobPolicy:
        hosts = settings.callback_hosts.split(",")
        return cls(
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            backoff_seconds=settings.job_backoff_seconds,
            callback_hosts=tuple(h.strip().lower() for h in hosts if h.strip()),
            callback_secret=settings.callback_secret,
            callback_timeout_seconds=settings.callback_timeout_seconds,
        )

    def callback_backoff(self, attempts: int) -> float:
        """Seconds before delivery ``attempts + 1``: doubling from 1 s, at most 15 minutes."""
        base = min(900.0, self.callback_backoff_seconds * 2 ** max(0, attempts - 1))
        return base * (1.0 + 0.2 * random.random())

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1``: doubling, capped, 0–20 % jitter."""
        base = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))
        return base * (1.0 + 0.2 * random.random())

    def check_callback(self, url: str) -> str:
        try:  # urlsplit and .port raise ValueError on a bad IPv6 host or port
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"callback_url must be an http or https URL, not {url!r}")
        if not self.callback_hosts:
            raise Forbidden(
                "callbacks are turned off: set ARGUS_CALLBACK_HOSTS to the hosts that may "
                "receive them"
            )
        host = parts.hostname.lower()
        with_port = f"{host}:{port}" if port else host
        if host not in self.callback_hosts and with_port not in self.callback_hosts:
            raise Forbidden(
                f"callback host {with_port!r} is not allowed; allowed hosts are "
                f"{', '.join(self.callback_hosts)}"
            )
        return url


@dataclass(frozen=True)
class JobInfo:
    id: str
    question: str
    status: str
    priority: int
    image_sha256: str
    image_bytes: int
    options: dict[str, Any]
    idempotency_key: str | None
    callback_url: str | None
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    run_after: datetime | None
    answer: dict[str, Any] | None
    error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None
    callback: dict[str, Any] | None = None
    """The delivery state of the callback (None: no callback, or not due yet)."""
    progress: dict[str, Any] | None = None
    """How far a running training job has got."""

    @classmethod
    def of(cls, row: Any, callback: dict[str, Any] | None = None) -> JobInfo:
        return cls(
            id=row.id,
            question=row.question,
            status=row.status,
            priority=row.priority,
            image_sha256=row.image_sha256,
            image_bytes=row.image_bytes,
            options=dict(row.options or {}),
            idempotency_key=row.idempotency_key,
            callback_url=row.callback_url,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            lease_owner=row.lease_owner,
            lease_expires_at=_aware(row.lease_expires_at),
            run_after=_aware(row.run_after),
            answer=row.answer,
            error=row.error,
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            finished_at=_aware(row.finished_at),
            callback=callback,
            progress=row.progress,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "status": self.status,
            "priority": self.priority,
            "image": {"sha256": self.image_sha256, "bytes": self.image_bytes},
            "options": self.options,
            "idempotency_key": self.idempotency_key,
            "callback_url": self.callback_url,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "lease_owner": self.lease_owner,
            "lease_expires_at": _iso(self.lease_expires_at),
            "run_after": _iso(self.run_after),
            "answer": self.answer,
            "error": self.error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "finished_at": _iso(self.finished_at),
            "callback": self.callback,
            "progress": self.progress,
        }


@dataclass(frozen=True)
class Claimed:
    """A job a worker holds: ``token`` proves the lease when it completes or fails the job."""

    id: str
    question: str
    image_sha256: str
    options: dict[str, Any]
    attempts: int
    max_attempts: int
    callback_url: str | None
    token: str


def callback_state(row: Any) -> dict[str, Any]:
    """A row of the callback outbox as ``jobs show`` and ``GET /v1/jobs/{id}`` show it."""
    return {
        "status": row.status,
        "attempts": row.attempts,
        "next_at": _iso(row.next_at) if row.status == "pending" else None,
        "last_error": row.last_error,
        "delivered_at": _iso(row.delivered_at),
    }
