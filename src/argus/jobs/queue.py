"""The durable job queue: jobs are rows, claims are leases.

A worker claims a batch of jobs by writing its lease token into them (``BEGIN IMMEDIATE`` on
SQLite, ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two claimers never take the same
row). While the lease holds no one else runs the job; when it lapses (the worker died) the next
claim takes the job over and counts another attempt. A job's answer and its prediction record are
written in the same transaction that marks it done, and only while the lease token is still the
one in the row, so a job is answered exactly once however often it ran.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from argus.contracts import Answer, AskOptions
from argus.db.schema import Callback, Job, PredictionRecord
from argus.errors import BadInput, Conflict, NotFound
from argus.jobs.images import ImageStore
from argus.jobs.outbox import callback_body, enqueue
from argus.jobs.types import (
    STATUSES,
    WAITING,
    Claimed,
    JobInfo,
    JobPolicy,
    callback_state,
    utcnow,
)
from argus.records import record_row

log = logging.getLogger(__name__)

CHANNEL = "argus_jobs"
_PREFIX = re.compile(r"^(job_)?[0-9a-f]{1,32}$")


class JobQueue:
    def __init__(self, engine: Engine, images: ImageStore, policy: JobPolicy | None = None) -> None:
        self.engine = engine
        self.images = images
        self.policy = policy or JobPolicy()
        self.dialect = engine.dialect.name

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that writes: BEGIN IMMEDIATE on SQLite so writers queue up at the
        start instead of failing at commit; PostgreSQL relies on row locks."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    # -- submitting --------------------------------------------------------------------

    def submit(
        self,
        question: str,
        data: bytes,
        *,
        options: AskOptions | dict[str, Any] | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        max_attempts: int | None = None,
    ) -> tuple[JobInfo, bool]:
        """Store the image (or a training job's zip) and queue a job; returns (job, created).
        The same ``idempotency_key`` answers the job it first created instead of a second
        one. ``options``: how to ask, or (a dict) what a training job was asked to do."""
        opts = options.stored() if isinstance(options, AskOptions) else dict(options or {})
        if callback_url:
            self.policy.check_callback(callback_url)
        attempts = self.policy.max_attempts if max_attempts is None else max_attempts
        if attempts < 1 or attempts > 100:
            raise BadInput(f"max_attempts must be between 1 and 100, not {attempts}")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
            raise BadInput("idempotency_key must be 1 to 200 characters long")
        if idempotency_key is not None:
            existing = self._by_key(idempotency_key)
            if existing is not None:
                return self._same_request(existing, question, data, opts), False
        # The image goes first: a row never points at a missing file; a lone file is harmless.
        digest = self.images.put(data)
        now = utcnow()
        job_id = f"job_{uuid.uuid4().hex}"
        stmt = insert(Job).values(
            id=job_id,
            question=question,
            status="queued",
            priority=priority,
            image_sha256=digest,
            image_bytes=len(data),
            options=opts,
            idempotency_key=idempotency_key,
            callback_url=callback_url or None,
            attempts=0,
            max_attempts=attempts,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
        row = None
        try:
            with self._write() as conn:
                if conn.dialect.insert_returning:  # the row as stored, with no second query
                    row = conn.execute(stmt.returning(*Job.__table__.columns)).first()
                else:
                    conn.execute(stmt)
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_notify(:c, :q)"), {"c": CHANNEL, "q": question})
        except IntegrityError:
            existing = self._by_key(idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return self._same_request(existing, question, data, opts), False
        # A new job has no callback delivery yet, so its row is all of it.
        return (JobInfo.of(row) if row is not None else self.get(job_id)), True

    def _by_key(self, key: str) -> JobInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Job).where(Job.idempotency_key == key)).first()
        return JobInfo.of(row) if row is not None else None

    def _same_request(
        self, job: JobInfo, question: str, data: bytes, opts: dict[str, Any]
    ) -> JobInfo:
        if (
            job.question != question
            or job.image_sha256 != hashlib.sha256(data).hexdigest()
            or job.options != opts
        ):
            raise Conflict(
                f"idempotency_key {job.idempotency_key!r} was already used for job {job.id} "
                "with a different question, image or options"
            )
        return job

    # -- claiming and leases -------------------------------------------------------------

    def _claimable(self, now: datetime, questions: Iterable[str] | None) -> Any:
        cond = or_(
            and_(Job.status.in_(WAITING), Job.run_after <= now),
            and_(
                Job.status == "running",
                Job.lease_expires_at < now,
                Job.attempts < Job.max_attempts,
            ),
        )
        if questions:
            cond = and_(cond, Job.question.in_(list(questions)))
        return cond

    def has_work(self, questions: Iterable[str] | None = None) -> bool:
        """A cheap read (no write lock) that says whether a claim could find anything."""
        now = utcnow()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(Job.id).where(self._claimable(now, questions)).limit(1)
            ).first()
            if found is not None:
                return True
            # Jobs whose lease lapsed with no attempts left are also work: they go dead.
            lapsed = conn.execute(
                select(Job.id)
                .where(Job.status == "running", Job.lease_expires_at < now)
                .limit(1)
            ).first()
        return lapsed is not None

    def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float | None = None,
        questions: Iterable[str] | None = None,
    ) -> list[Claimed]:
        """Take up to ``limit`` runnable jobs, highest priority first, under a new lease."""
        if limit < 1:
            return []
        questions = list(questions) if questions else None
        lease = self.policy.lease_seconds if lease_seconds is None else lease_seconds
        token = f"{owner}/{uuid.uuid4().hex[:12]}"
        now = utcnow()
        with self._write() as conn:
            self._bury_lapsed(conn, now, questions)
            ids = list(
                conn.execute(
                    select(Job.id)
                    .where(self._claimable(now, questions))
                    .order_by(Job.priority.desc(), Job.run_after, Job.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not ids:
                return []
            conn.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(
                    status="running",
                    lease_owner=token,
                    lease_expires_at=now + timedelta(seconds=lease),
                    attempts=Job.attempts + 1,
                    updated_at=now,
                )
            )
            rows = conn.execute(select(Job).where(Job.id.in_(ids))).all()
        by_id = {r.id: r for r in rows}
        return [
            Claimed(
                id=r.id,
                question=r.question,
                image_sha256=r.image_sha256,
                options=dict(r.options or {}),
                attempts=r.attempts,
                max_attempts=r.max_attempts,
                callback_url=r.callback_url,
                token=token,
            )
            for r in (by_id[i] for i in ids)
        ]

    def _bury_lapsed(self, conn: Connection, now: datetime, questions: list[str] | None) -> None:
        """Jobs whose worker vanished on their last allowed attempt are dead, with why."""
        cond = and_(
            Job.status == "running",
            Job.lease_expires_at < now,
            Job.attempts >= Job.max_attempts,
        )
        if questions:
            cond = and_(cond, Job.question.in_(questions))
        ids = list(
            conn.execute(select(Job.id).where(cond).limit(100).with_for_update(skip_locked=True))
            .scalars()
        )
        if not ids:
            return
        conn.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(
                status="dead",
                error=func.coalesce(Job.error + "; ", "")
                + "the worker running the last attempt stopped before answering (its lease "
                "expired)",
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
            )
        )
        log.warning("%d job(s) dead: their last attempt's worker stopped", len(ids))

    def extend(
        self, token: str, ids: Iterable[str], lease_seconds: float | None = None
    ) -> set[str]:
        """Push the lease of jobs still held under ``token``; returns the ids still held."""
        ids = list(ids)
        if not ids:
            return set()
        lease = self.policy.lease_seconds if lease_seconds is None else lease_seconds
        now = utcnow()
        held = and_(Job.id.in_(ids), Job.lease_owner == token, Job.status == "running")
        with self._write() as conn:
            conn.execute(
                update(Job)
                .where(held)
                .values(lease_expires_at=now + timedelta(seconds=lease), updated_at=now)
            )
            return set(conn.execute(select(Job.id).where(held)).scalars())

    def release(self, token: str, ids: Iterable[str]) -> int:
        """Give back jobs a stopping worker never started, without counting an attempt."""
        ids = list(ids)
        if not ids:
            return 0
        now = utcnow()
        with self._write() as conn:
            result = conn.execute(
                update(Job)
                .where(Job.id.in_(ids), Job.lease_owner == token, Job.status == "running")
                .values(
                    status="queued",
                    attempts=Job.attempts - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    run_after=now,
                    updated_at=now,
                )
            )
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_notify(:c, 'released')"), {"c": CHANNEL})
            return int(result.rowcount or 0)

    # -- finishing -----------------------------------------------------------------------

    def complete(
        self, job_id: str, token: str, answer: Answer | dict[str, Any], record: bool = True
    ) -> bool:
        """Mark the job done with its answer (and its prediction record) in one transaction,
        only if ``token`` still holds it. False means someone else took the job over. A
        training job's answer is its result (a dict): no prediction record."""
        return self.complete_many([(job_id, token, answer)], record)[0]

    def complete_many(
        self, finished: list[tuple[str, str, Answer | dict[str, Any]]], record: bool = True
    ) -> list[bool]:
        """:meth:`complete` for several (job id, token, answer) in one transaction: a worker
        writes the jobs that finished while its last write ran together (on SQLite each write
        waits for the one database lock; one wait for many jobs instead of one each)."""
        with self._write() as conn:
            return [self._complete_in(conn, *item, record) for item in finished]

    def _complete_in(
        self,
        conn: Connection,
        job_id: str,
        token: str,
        answer: Answer | dict[str, Any],
        record: bool,
    ) -> bool:
        now = utcnow()
        body = answer.to_json() if isinstance(answer, Answer) else answer
        done = (
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == token, Job.status == "running")
            .values(
                status="done",
                answer=body,
                error=None,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
            )
        )
        if conn.dialect.update_returning:  # one statement where the database can say
            held = conn.execute(
                done.returning(Job.options, Job.callback_url, Job.question)
            ).first()
            if held is None:
                return False
            opts, callback_url, question = held
        else:
            if conn.execute(done).rowcount != 1:
                return False
            opts, callback_url, question = conn.execute(
                select(Job.options, Job.callback_url, Job.question).where(Job.id == job_id)
            ).one()
        if record and isinstance(answer, Answer):
            row = record_row(answer, "job", app=(opts or {}).get("app"), job_id=job_id)
            conn.execute(insert(PredictionRecord).values(**row))
        if callback_url:
            # In this transaction: a worker that dies after the commit leaves the
            # callback in the outbox for any worker to deliver.
            enqueue(conn, job_id, callback_url, callback_body(job_id, question, body))
        return True

    def report_progress(self, job_id: str, token: str, progress: dict[str, Any]) -> bool:
        """Write how far a running job has got (only while ``token`` holds it)."""
        with self._write() as conn:
            result = conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == token, Job.status == "running")
                .values(progress=progress, updated_at=utcnow())
            )
            return bool(result.rowcount == 1)

    def fail(self, job_id: str, token: str, error: str, retryable: bool = True) -> str | None:
        """Record a failed attempt: ``failed`` (runs again after a growing backoff) or
        ``dead`` when out of attempts or not worth retrying. None if the lease was lost."""
        now = utcnow()
        with self._write() as conn:
            row = conn.execute(
                select(Job.attempts, Job.max_attempts).where(
                    Job.id == job_id, Job.lease_owner == token, Job.status == "running"
                )
            ).first()
            if row is None:
                return None
            attempts, max_attempts = row
            values: dict[str, Any] = {
                "error": error[:4000],
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if not retryable or attempts >= max_attempts:
                values.update(status="dead", finished_at=now)
            else:
                delay = self.policy.backoff(attempts)
                values.update(status="failed", run_after=now + timedelta(seconds=delay))
            conn.execute(
                update(Job).where(Job.id == job_id, Job.lease_owner == token).values(**values)
            )
            return str(values["status"])

    def cancel(self, job_id: str) -> JobInfo:
        """Cancel a job that is waiting to run; a running or finished job is a conflict."""
        now = utcnow()
        with self._write() as conn:
            row = conn.execute(select(Job).where(Job.id == job_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"no job with id {job_id!r}")
            if row.status in WAITING:
                conn.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status.in_(WAITING))
                    .values(status="cancelled", finished_at=now, updated_at=now)
                )
            elif row.status != "cancelled":
                raise Conflict(
                    f"job {job_id} is {row.status}; only a queued job (or one waiting to retry) "
                    "can be cancelled"
                )
        return self.get(job_id)

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(Job).where(Job.id == job_id)).first()
            if row is None:
                raise NotFound(f"no job with id {job_id!r}")
            callback = conn.execute(
                select(Callback).where(Callback.job_id == job_id).order_by(Callback.id.desc())
            ).first()
        return JobInfo.of(row, callback_state(callback) if callback is not None else None)

    def find(self, id_or_prefix: str) -> str:
        """The id of the one job whose id is, or starts with, ``id_or_prefix`` (``job_`` may
        be left out). For the command line, which has the database anyway; the REST API
        takes whole ids only, since an id is what lets a caller see a job."""
        text = id_or_prefix.strip().lower()
        if not _PREFIX.match(text):
            raise NotFound(f"no job with id {id_or_prefix!r}")
        if not text.startswith("job_"):
            text = "job_" + text
        with self.engine.connect() as conn:
            # the prefix is hex after "job_", so a literal '_' is all LIKE needs escaped
            pattern = text.replace("_", "\\_") + "%"
            ids = list(
                conn.execute(
                    select(Job.id).where(Job.id.like(pattern, escape="\\")).limit(2)
                ).scalars()
            )
        if not ids:
            raise NotFound(f"no job with id {id_or_prefix!r}")
        if len(ids) > 1 and text not in ids:
            raise BadInput(f"{id_or_prefix!r} starts more than one job id; give more of it")
        return text if text in ids else ids[0]

    def list_jobs(
        self,
        status: str | None = None,
        question: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[JobInfo]:
        """Newest first. ``before`` (a job id) pages backwards."""
        if status is not None and status not in STATUSES:
            raise BadInput(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if not 1 <= limit <= 10_000:
            raise BadInput(f"limit must be between 1 and 10000, not {limit}")
        query = select(Job)
        if status:
            query = query.where(Job.status == status)
        if question:
            query = query.where(Job.question == question)
        if before:
            pivot = self.get(before)
            query = query.where(
                or_(
                    Job.created_at < pivot.created_at,
                    and_(Job.created_at == pivot.created_at, Job.id < pivot.id),
                )
            )
        query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [JobInfo.of(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return {str(s): int(n) for s, n in rows}


class Wakeup:
    """Lets an idle worker sleep until a job arrives: LISTEN/NOTIFY on PostgreSQL, a plain
    timed sleep elsewhere (SQLite has no cross-process signal; claims poll cheaply)."""

    def __init__(self, engine: Engine) -> None:
        self._conn: Any = None
        if engine.dialect.name == "postgresql":
            import psycopg

            url = make_url(engine.url).set(drivername="postgresql")
            self._conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when a notification arrived."""
        if self._conn is None:
            time.sleep(timeout)
            return False
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            return True
        return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
