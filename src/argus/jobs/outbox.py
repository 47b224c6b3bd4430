"""The callback outbox: a job's callback is a row written in the transaction that marks the
job done (:meth:`JobQueue.complete`), then delivered by any worker, at least once.

A worker claims due rows under a short lease (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL), POSTs each and records the outcome: ``delivered`` on a 2xx,
another try after a growing backoff on a 5xx, 429, timeout or refused connection, ``failed``
when the attempts run out or the receiver refuses it (any other 4xx, or a host no longer
allowed). A worker that dies mid-delivery leaves a lease that lapses, and another worker sends
the callback again: receivers deduplicate by ``X-Argus-Delivery`` (the same on every retry).

With ``ARGUS_CALLBACK_SECRET`` set, every POST carries ``X-Argus-Signature: sha256=<hex>``,
the HMAC-SHA256 of the exact body bytes with that key."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update

from argus.db.schema import Callback
from argus.errors import ArgusError
from argus.jobs.types import JobPolicy, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Argus-Signature"
DELIVERY_HEADER = "X-Argus-Delivery"


def sign(body: bytes, secret: str) -> str:
    """The ``X-Argus-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_body(job_id: str, question: str, answer: dict[str, Any]) -> str:
    return json.dumps(
        {"id": job_id, "status": "done", "question": question, "answer": answer},
        separators=(",", ":"),
    )


def enqueue(conn: Connection, job_id: str, url: str, body: str) -> None:
    """Add a callback to the outbox inside the caller's transaction."""
    now = utcnow()
    conn.execute(
        insert(Callback).values(
            job_id=job_id, url=url, body=body, status="pending", attempts=0, next_at=now,
            created_at=now,
        )
    )


@dataclass(frozen=True)
class Delivery:
    id: int
    job_id: str
    url: str
    body: str
    attempts: int
    token: str


class Outbox:
    def __init__(self, engine: Engine, policy: JobPolicy) -> None:
        self.engine = engine
        self.policy = policy

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _due(self) -> Any:
        now = utcnow()
        return and_(
            Callback.status == "pending",
            Callback.next_at <= now,
            or_(Callback.lease_expires_at.is_(None), Callback.lease_expires_at < now),
        )

    def has_due(self) -> bool:
        """A cheap read (no write lock): is there anything a claim would take?"""
        with self.engine.connect() as conn:
            return conn.execute(select(Callback.id).where(self._due()).limit(1)).first() is not None

    def claim(self, owner: str, limit: int = 16) -> list[Delivery]:
        token = f"{owner}/{uuid.uuid4().hex[:12]}"
        now = utcnow()
        with self._write() as conn:
            rows = conn.execute(
                select(Callback.id, Callback.job_id, Callback.url, Callback.body,
                       Callback.attempts)
                .where(self._due())
                .order_by(Callback.next_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return []
            conn.execute(
                update(Callback)
                .where(Callback.id.in_([r.id for r in rows]))
                .values(
                    lease_owner=token,
                    lease_expires_at=now + timedelta(seconds=self.policy.callback_lease_seconds),
                    attempts=Callback.attempts + 1,
                )
            )
        return [Delivery(r.id, r.job_id, r.url, r.body, r.attempts + 1, token) for r in rows]

    def _finish(self, delivery: Delivery, **values: Any) -> None:
        with self._write() as conn:
            conn.execute(
                update(Callback)
                .where(Callback.id == delivery.id, Callback.lease_owner == delivery.token)
                .values(lease_owner=None, lease_expires_at=None, **values)
            )

    def delivered(self, delivery: Delivery) -> None:
        self._finish(delivery, status="delivered", delivered_at=utcnow(), last_error=None)

    def retry(self, delivery: Delivery, error: str, retryable: bool = True) -> str:
        """Record a failed delivery; returns the new status (pending or failed)."""
        if retryable and delivery.attempts < self.policy.callback_attempts:
            later = utcnow() + timedelta(seconds=self.policy.callback_backoff(delivery.attempts))
            self._finish(delivery, status="pending", next_at=later, last_error=error[:1000])
            return "pending"
        self._finish(delivery, status="failed", last_error=error[:1000])
        return "failed"

    def state(self, job_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(Callback).where(Callback.job_id == job_id).order_by(Callback.id.desc())
            ).first()

    async def send(self, client: Any, delivery: Delivery) -> str:
        """POST one callback; record and return its new status."""
        import asyncio

        import httpx

        try:
            self.policy.check_callback(delivery.url)
        except ArgusError as exc:
            return await asyncio.to_thread(self.retry, delivery, exc.message, False)
        body = delivery.body.encode()
        headers = {"content-type": "application/json", DELIVERY_HEADER: str(delivery.id)}
        if self.policy.callback_secret:
            headers[SIGNATURE_HEADER] = sign(body, self.policy.callback_secret)
        try:
            response = await client.post(delivery.url, content=body, headers=headers,
                                         timeout=self.policy.callback_timeout_seconds)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return await asyncio.to_thread(self.retry, delivery, error)
        if 200 <= response.status_code < 300:
            await asyncio.to_thread(self.delivered, delivery)
            return "delivered"
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        error = f"the receiver answered {response.status_code}"
        return await asyncio.to_thread(self.retry, delivery, error, retryable)
