"""Job callbacks go through an outbox written with the answer: delivered by any worker, retried
with backoff, signed with HMAC-SHA256, their delivery state shown with the job."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import replace

from argus.contracts import Answer, ImageFacts, Timings
from argus.jobs.outbox import Outbox
from argus.jobs.queue import JobQueue
from argus.jobs.types import JobPolicy
from argus.jobs.worker import Worker
from argus.server import local_core
from argus.settings import Settings
from tests.jobs.receiver import receiver

SECRET = "s3cret-for-tests"


def _answer(sha: str) -> Answer:
    return Answer(question="tiny", image=ImageFacts(sha256=sha, width=1, height=1), models=[],
                  answer={"labels": []}, timings_ms=Timings(decode=0, infer=0, total=0),
                  steps={}, cached=False)


def _policy(queue: JobPolicy) -> JobPolicy:
    return replace(queue, callback_hosts=("127.0.0.1",), callback_secret=SECRET,
                   callback_backoff_seconds=0.05)


def run_worker_until(
    settings: Settings, queue: JobQueue, done: Callable[[], bool]
) -> dict[str, int]:
    async def run() -> dict[str, int]:
        core = local_core(settings)
        worker = Worker(core, queue, concurrency=4, lease_seconds=10)
        task = asyncio.create_task(worker.run())
        try:
            for _ in range(400):
                if done():
                    break
                await asyncio.sleep(0.05)
        finally:
            worker.stop()
            stats = await task
            await core.close()
        return stats.to_dict()

    return asyncio.run(run())


def test_a_callback_left_by_a_dead_worker_is_delivered_by_another_signed(
    tiny_settings: Settings, queue: JobQueue
) -> None:
    """The first worker marks the job done and dies before sending: the callback is in the
    outbox, and a worker started later delivers it, signed, and the job shows it delivered."""
    queue.policy = _policy(queue.policy)
    with receiver() as got:
        job, _ = queue.submit("tiny", b"\xff\xd8not-run", callback_url=got.url)
        claimed = queue.claim("doomed", 1)[0]
        assert queue.complete(job.id, claimed.token, _answer(job.image_sha256), record=False)
        state = queue.get(job.id).callback
        assert state is not None and state["status"] == "pending" and state["attempts"] == 0
        # ... the worker is gone here, nothing was sent ...
        assert got.posts == []
        run_worker_until(tiny_settings, queue, lambda: bool(got.posts))
        assert len(got.posts) == 1
        headers, body = got.posts[0]
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-argus-signature"] == f"sha256={expected}"
        assert json.loads(body)["id"] == job.id and json.loads(body)["status"] == "done"
        assert headers["x-argus-delivery"]
        shown = queue.get(job.id).to_dict()["callback"]
        assert shown["status"] == "delivered" and shown["attempts"] == 1
        assert shown["delivered_at"] is not None


def test_a_refused_callback_is_retried_with_backoff(
    tiny_settings: Settings, queue: JobQueue, photos: dict[str, bytes]
) -> None:
    queue.policy = _policy(queue.policy)
    with receiver(refuse_first=2) as got:
        job, _ = queue.submit("tiny", photos["coffee"], callback_url=got.url)
        run_worker_until(tiny_settings, queue, lambda: bool(got.posts))
        assert len(got.posts) == 1
        shown = queue.get(job.id).callback
        assert shown is not None and shown["status"] == "delivered" and shown["attempts"] == 3
        assert json.loads(got.posts[0][1])["id"] == job.id


def test_a_dead_workers_delivery_is_taken_again_once_its_lease_lapses(queue: JobQueue) -> None:
    # The lease is three callback timeouts: held while a POST may still be on its way, then
    # free for another worker (the one that claimed it is presumed dead).
    queue.policy = replace(_policy(queue.policy), callback_timeout_seconds=0.2)
    job, _ = queue.submit("tiny", b"x", callback_url="http://127.0.0.1:9/hook")
    claimed = queue.claim("w", 1)[0]
    queue.complete(job.id, claimed.token, _answer(job.image_sha256), record=False)
    outbox = Outbox(queue.engine, queue.policy)
    (first,) = outbox.claim("dead")
    assert outbox.claim("alive") == []
    time.sleep(0.7)
    (again,) = outbox.claim("alive")
    assert again.id == first.id and again.token != first.token


def test_a_receiver_that_never_answers_ends_failed_with_the_reason(queue: JobQueue) -> None:
    queue.policy = replace(_policy(queue.policy), callback_attempts=2)
    job, _ = queue.submit("tiny", b"x", callback_url="http://127.0.0.1:9/hook")
    claimed = queue.claim("w", 1)[0]
    queue.complete(job.id, claimed.token, _answer(job.image_sha256), record=False)
    outbox = Outbox(queue.engine, queue.policy)

    async def twice() -> list[str]:
        import httpx

        out = []
        async with httpx.AsyncClient() as client:
            for _ in range(2):
                while not outbox.has_due():
                    await asyncio.sleep(0.02)
                (delivery,) = outbox.claim("w")
                out.append(await outbox.send(client, delivery))
        return out

    assert asyncio.run(twice()) == ["pending", "failed"]
    shown = queue.get(job.id).callback
    assert shown is not None and shown["status"] == "failed" and "Connect" in shown["last_error"]
