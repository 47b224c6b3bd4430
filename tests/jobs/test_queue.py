"""Lease semantics of the job queue on real SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from argus.contracts import Answer
from argus.db.schema import PredictionRecord
from argus.errors import BadInput, Conflict, Forbidden, NotFound
from argus.jobs.queue import JobQueue
from argus.jobs.types import JobPolicy

ANSWER = Answer.from_json({
    "question": "tiny",
    "image": {"sha256": "ab" * 32, "width": 4, "height": 3},
    "models": [{"name": "tiny", "version": 1, "digest": "sha256:00"}],
    "answer": {"labels": [{"label": "red", "index": 0, "score": 0.9}]},
    "timings_ms": {"decode": 0.1, "infer": 0.5, "total": 1.0},
    "steps": {},
    "cached": False,
})


def image(n: int) -> bytes:
    return b"\xff\xd8not really a jpeg %d" % n


def records(queue: JobQueue, job_id: str) -> int:
    with queue.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(PredictionRecord.job_id == job_id)
            ).scalar_one()
        )


def test_two_claimers_never_get_the_same_job(queue: JobQueue) -> None:
    ids = {queue.submit("tiny", image(i))[0].id for i in range(60)}
    got: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            while True:
                batch = queue.claim(name, 7, lease_seconds=60)
                if not batch:
                    return
                got[name].extend(j.id for j in batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(ids)
    assert queue.claim("c", 10) == []
    assert queue.counts() == {"running": 60}


def test_expired_lease_is_reclaimed_and_only_the_new_holder_completes(queue: JobQueue) -> None:
    job, created = queue.submit("tiny", image(1))
    assert created and job.status == "queued"
    [first] = queue.claim("w1", 5, lease_seconds=0.3)
    assert first.attempts == 1
    assert queue.claim("w2", 5, lease_seconds=30) == []  # the lease holds
    time.sleep(0.5)
    [second] = queue.claim("w2", 5, lease_seconds=30)
    assert second.id == job.id and second.attempts == 2 and second.token != first.token
    assert queue.complete(job.id, first.token, ANSWER) is False  # the old holder is too late
    assert queue.fail(job.id, first.token, "late") is None
    assert queue.complete(job.id, second.token, ANSWER) is True
    assert queue.complete(job.id, second.token, ANSWER) is False
    done = queue.get(job.id)
    assert done.status == "done" and done.answer == ANSWER.to_json() and done.lease_owner is None
    assert records(queue, job.id) == 1


def test_extend_keeps_the_lease(queue: JobQueue) -> None:
    queue.submit("tiny", image(1))
    [held] = queue.claim("w1", 1, lease_seconds=0.4)
    assert queue.extend(held.token, [held.id], lease_seconds=30) == {held.id}
    time.sleep(0.6)
    assert queue.claim("w2", 1) == []
    assert queue.extend("someone-else/x", [held.id]) == set()


def test_max_attempts_then_dead_with_the_last_error(queue: JobQueue) -> None:
    queue.policy = JobPolicy(backoff_seconds=0.05)
    job, _ = queue.submit("tiny", image(1), max_attempts=2)
    [c1] = queue.claim("w", 1)
    assert queue.fail(job.id, c1.token, "boom 1") == "failed"
    assert queue.get(job.id).error == "boom 1"
    time.sleep(0.15)
    [c2] = queue.claim("w", 1)
    assert c2.attempts == 2
    assert queue.fail(job.id, c2.token, "boom 2") == "dead"
    dead = queue.get(job.id)
    assert (dead.status, dead.error, dead.attempts) == ("dead", "boom 2", 2)
    assert dead.finished_at is not None
    assert queue.claim("w", 1) == []


def test_not_retryable_failure_is_dead_at_once(queue: JobQueue) -> None:
    job, _ = queue.submit("tiny", image(1))
    [c] = queue.claim("w", 1)
    assert queue.fail(job.id, c.token, "not an image", retryable=False) == "dead"
    assert queue.get(job.id).attempts == 1


def test_a_worker_vanishing_on_the_last_attempt_makes_the_job_dead(queue: JobQueue) -> None:
    job, _ = queue.submit("tiny", image(1), max_attempts=1)
    queue.claim("w", 1, lease_seconds=0.2)
    time.sleep(0.4)
    assert queue.has_work()
    assert queue.claim("w2", 1) == []
    dead = queue.get(job.id)
    assert dead.status == "dead"
    assert "lease expired" in (dead.error or "")


def test_backoff_grows(queue: JobQueue) -> None:
    policy = JobPolicy(backoff_seconds=0.1, backoff_max_seconds=100)
    delays = [policy.backoff(n) for n in range(1, 6)]
    assert all(a < b for a, b in itertools.pairwise(delays))
    assert JobPolicy(backoff_seconds=1, backoff_max_seconds=5).backoff(10) <= 6.0

    queue.policy = JobPolicy(backoff_seconds=0.05)
    job, _ = queue.submit("tiny", image(1), max_attempts=5)
    waits: list[timedelta] = []
    for n in range(3):
        deadline = time.monotonic() + 5
        claimed = queue.claim("w", 1)
        while not claimed and time.monotonic() < deadline:
            time.sleep(0.02)
            claimed = queue.claim("w", 1)
        assert claimed, f"the job did not come back for attempt {n + 2}"
        queue.fail(job.id, claimed[0].token, f"boom {n}")
        row = queue.get(job.id)
        assert row.run_after is not None and row.updated_at is not None
        waits.append(row.run_after - row.updated_at)
    assert waits[0] < waits[1] < waits[2]


def test_idempotency_key_returns_the_same_job(queue: JobQueue) -> None:
    first, created = queue.submit("tiny", image(1), idempotency_key="order-17")
    again, created_again = queue.submit("tiny", image(1), idempotency_key="order-17")
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict, match="order-17"):
        queue.submit("tiny", image(2), idempotency_key="order-17")
    assert queue.counts() == {"queued": 1}


def test_cancel(queue: JobQueue) -> None:
    waiting, _ = queue.submit("tiny", image(1), priority=0)
    busy, _ = queue.submit("tiny", image(2), priority=5)
    [claimed] = queue.claim("w", 1)
    assert claimed.id == busy.id  # higher priority first
    cancelled = queue.cancel(waiting.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert queue.cancel(waiting.id).status == "cancelled"
    with pytest.raises(Conflict, match="running"):
        queue.cancel(busy.id)
    with pytest.raises(NotFound):
        queue.cancel("job_missing")
    assert queue.claim("w", 5) == []


def test_release_gives_jobs_back_without_an_attempt(queue: JobQueue) -> None:
    job, _ = queue.submit("tiny", image(1))
    [c] = queue.claim("w", 1)
    assert queue.release(c.token, [c.id]) == 1
    again = queue.get(job.id)
    assert (again.status, again.attempts, again.lease_owner) == ("queued", 0, None)


def test_callbacks_only_to_configured_hosts(queue: JobQueue) -> None:
    job, _ = queue.submit("tiny", image(1), callback_url="http://127.0.0.1:9/hook")
    assert job.callback_url == "http://127.0.0.1:9/hook"
    with pytest.raises(Forbidden, match="not allowed"):
        queue.submit("tiny", image(1), callback_url="http://evil.example/hook")
    with pytest.raises(BadInput, match="http"):
        queue.submit("tiny", image(1), callback_url="file:///etc/passwd")
    queue.policy = JobPolicy()
    with pytest.raises(Forbidden, match="ARGUS_CALLBACK_HOSTS"):
        queue.submit("tiny", image(1), callback_url="http://127.0.0.1:9/hook")


def test_images_are_content_addressed_outside_the_row(queue: JobQueue) -> None:
    a, _ = queue.submit("tiny", image(7))
    b, _ = queue.submit("tiny", image(7))
    assert a.id != b.id and a.image_sha256 == b.image_sha256
    path = queue.images.path(a.image_sha256)
    assert path.parent.name == a.image_sha256[:2] and path.name == a.image_sha256[2:]
    assert queue.images.get(a.image_sha256) == image(7)
    path.write_bytes(b"changed")
    with pytest.raises(NotFound, match="damaged"):
        queue.images.get(a.image_sha256)


def test_list_filters_and_validates(queue: JobQueue) -> None:
    for i in range(5):
        queue.submit("tiny", image(i))
    [c] = queue.claim("w", 1)
    assert len(queue.list_jobs()) == 5
    assert [j.id for j in queue.list_jobs(status="running")] == [c.id]
    assert len(queue.list_jobs(status="queued", limit=2)) == 2
    with pytest.raises(BadInput, match="status"):
        queue.list_jobs(status="sleeping")
