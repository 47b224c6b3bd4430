"""``argus worker``: claims jobs in batches and answers them with the models kept in memory.

All jobs of a claim are asked at once, so the per-model batcher sees real batches. A heartbeat
pushes the leases forward while answers are being computed; on SIGTERM/SIGINT the worker stops
claiming, lets running jobs finish for a grace period and gives back the ones it never finished.
Every worker also delivers callbacks from the outbox (:mod:`argus.jobs.outbox`), its own and
those a dead worker left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from argus.contracts import Answer, AskOptions
from argus.core import Core
from argus.errors import ArgusError, ConfigError
from argus.jobs.outbox import Outbox
from argus.jobs.queue import JobQueue, Wakeup
from argus.jobs.training import TRAIN_QUESTION, run_training
from argus.jobs.types import Claimed

log = logging.getLogger(__name__)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0
    callbacks: int = 0
    started: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self.started)
        return {
            "done": self.done,
            "failed": self.failed,
            "dead": self.dead,
            "lost_leases": self.lost,
            "callbacks_delivered": self.callbacks,
            "jobs_per_s": round(self.done / elapsed, 2),
        }


class Worker:
    def __init__(
        self,
        core: Core,
        queue: JobQueue,
        *,
        concurrency: int = 16,
        lease_seconds: float | None = None,
        questions: list[str] | None = None,
        owner: str | None = None,
        grace_seconds: float = 10.0,
        job_timeout: float = 300.0,
        max_idle_wait: float = 1.0,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"a worker needs a concurrency of at least 1, not {concurrency}")
        self.core = core
        self.queue = queue
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds or queue.policy.lease_seconds
        self.questions = questions or None
        self.owner = owner or default_owner()
        self.grace_seconds = grace_seconds
        self.job_timeout = job_timeout
        self.max_idle_wait = max_idle_wait
        self.stats = WorkerStats()
        self.stopping = asyncio.Event()
        self._running: dict[asyncio.Task[None], Claimed] = {}
        self.outbox = Outbox(queue.engine, queue.policy)
        self._callback_due = asyncio.Event()
        self._last_delivery_pass = False
        self.stopped_at: float | None = None
        self._training = asyncio.Semaphore(1)  # one training at a time: each uses every core
        # Answered jobs waiting to be written, and the task writing them (see _write_finished).
        self._finished: list[tuple[Claimed, Answer | dict[str, Any], asyncio.Future[bool]]] = []
        self._writing: asyncio.Task[None] | None = None

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.stopped_at = time.monotonic()
        self.stopping.set()

    # -- main loop -----------------------------------------------------------------------

    async def run(self) -> WorkerStats:
        wakeup = await asyncio.to_thread(Wakeup, self.queue.engine)
        heartbeat = asyncio.create_task(self._heartbeat())
        delivery = asyncio.create_task(self._deliver())
        stop = asyncio.ensure_future(self.stopping.wait())
        idle = 0.05
        try:
            while not self.stopping.is_set():
                free = self.concurrency - len(self._running)
                # Claim only when a good share of slots is free, so claims come in batches.
                if free >= max(1, self.concurrency // 2) or not self._running:
                    claimed = await asyncio.to_thread(self._claim, free)
                    for job in claimed:
                        task = asyncio.create_task(self._answer(job))
                        self._running[task] = job
                    if claimed:
                        idle = 0.05
                        continue
                if self._running:
                    await asyncio.wait(
                        [*self._running, stop],
                        timeout=1.0,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    self._reap()
                else:
                    await self._idle(wakeup, stop, idle)
                    idle = min(self.max_idle_wait, idle * 2)
        finally:
            stop.cancel()
            await self._shutdown()
            # One last pass sends what is due now; the rest stays in the outbox for others.
            self._last_delivery_pass = True
            self._callback_due.set()
            await asyncio.wait([delivery], timeout=self.outbox.policy.callback_timeout_seconds + 2)
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await asyncio.to_thread(wakeup.close)
        return self.stats

    def _claim(self, free: int) -> list[Claimed]:
        if not self.queue.has_work(self.questions):
            return []
        return self.queue.claim(self.owner, free, self.lease_seconds, self.questions)

    async def _idle(self, wakeup: Wakeup, stop: asyncio.Future[Any], timeout: float) -> None:
        if wakeup.listening:
            # PostgreSQL: a NOTIFY ends the wait at once; the timeout still catches lapsed
            # leases and retries whose backoff ran out.
            waited = asyncio.ensure_future(asyncio.to_thread(wakeup.wait, max(timeout, 1.0)))
            await asyncio.wait([stop, waited], return_when=asyncio.FIRST_COMPLETED)
            if not waited.done():
                await asyncio.wait([waited])
        else:
            await asyncio.wait([stop], timeout=timeout)

    def _reap(self) -> None:
        for task in [t for t in self._running if t.done()]:
            del self._running[task]
            if not task.cancelled() and task.exception() is not None:
                log.error("job task crashed: %r", task.exception())

    async def _shutdown(self) -> None:
        if self._running:
            log.info("stopping: waiting up to %.0fs for %d job(s)", self.grace_seconds,
                     len(self._running))
            await asyncio.wait(list(self._running), timeout=self.grace_seconds)
        unfinished = [t for t in self._running if not t.done()]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        by_token: dict[str, list[str]] = {}
        for task in unfinished:
            job = self._running[task]
            by_token.setdefault(job.token, []).append(job.id)
        for token, ids in by_token.items():
            given_back = await asyncio.to_thread(self.queue.release, token, ids)
            log.info("gave back %d unfinished job(s)", given_back)
        self._running.clear()

    async def _heartbeat(self) -> None:
        interval = max(0.2, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            by_token: dict[str, list[str]] = {}
            for task, job in list(self._running.items()):
                if not task.done():
                    by_token.setdefault(job.token, []).append(job.id)
            for token, ids in by_token.items():
                try:
                    held = await asyncio.to_thread(
                        self.queue.extend, token, ids, self.lease_seconds
                    )
                except Exception as exc:  # the database may blink; the next beat tries again
                    log.warning("could not extend leases: %s", exc)
                    continue
                still_running = {j.id for t, j in self._running.items() if not t.done()}
                lost = (set(ids) - held) & still_running
                if lost:
                    log.warning("lost the lease of %d job(s) (finished or taken over)", len(lost))

    # -- one job ---------------------------------------------------------------------------

    async def _answer(self, job: Claimed) -> None:
        if job.question == TRAIN_QUESTION:
            await self._train(job)
            return
        try:
            data = await asyncio.to_thread(self.queue.images.get, job.image_sha256)
            options = AskOptions.parse(job.options, source="job", record=False)
            answer = await asyncio.wait_for(
                self.core.ask(job.question, data, options), self.job_timeout
            )
        except TimeoutError:
            await self._fail(job, f"no answer within {self.job_timeout:.0f}s", retryable=True)
            return
        except ArgusError as exc:
            # 4xx means the request itself is wrong (bad image, unknown question): retrying
            # cannot help. 5xx (overloaded, model unavailable) may pass.
            await self._fail(job, exc.message, retryable=exc.status >= 500)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.id)
            await self._fail(job, f"internal error: {type(exc).__name__}: {exc}", retryable=True)
            return
        # The record is written by complete(), in the transaction that marks the job done, so
        # a job that ran twice (a worker died after answering) still has one record.
        await self._complete(job, answer)

    async def _complete(self, job: Claimed, answer: Answer | dict[str, Any]) -> None:
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._finished.append((job, answer, written))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_finished())
        if await written:
            self.stats.done += 1
            if job.callback_url:
                self._callback_due.set()  # complete() put it in the outbox
        else:
            self.stats.lost += 1
            log.warning("job %s was taken over before it finished here; answer dropped", job.id)

    async def _write_finished(self) -> None:
        """Write the jobs that finished, all those waiting in one transaction, until none
        wait: the jobs that finish while one write runs go in the next (group commit). On
        SQLite every write waits for the one database lock, which the other workers and the
        submitters want too; a write per job spent more time waiting than answering."""
        while self._finished:
            batch, self._finished = self._finished, []
            items = [(job.id, job.token, answer) for job, answer, _ in batch]
            try:
                results = await asyncio.to_thread(self.queue.complete_many, items)
            except Exception as exc:  # each job's own wait raises it, as a lone write did
                for _job, _answer, written in batch:
                    if not written.done():
                        written.set_exception(exc)
                continue
            for (_job, _answer, written), ok in zip(batch, results, strict=True):
                if not written.done():
                    written.set_result(ok)

    async def _train(self, job: Claimed) -> None:
        """A training job: in a child process, progress written on the job as it goes."""
        settings = self.core.settings

        def progress(state: dict[str, Any]) -> None:
            try:
                self.queue.report_progress(job.id, job.token, state)
            except Exception as exc:  # progress is a courtesy; the training goes on
                log.warning("could not write the progress of %s: %s", job.id, exc)

        def past_grace() -> bool:
            return self.stopped_at is not None and (
                time.monotonic() - self.stopped_at > self.grace_seconds
            )

        async with self._training:
            try:
                data = await asyncio.to_thread(self.queue.images.get, job.image_sha256)
                result = await asyncio.to_thread(
                    run_training, settings, data, job.options, progress, past_grace,
                    settings.train_timeout_s,
                )
            except TimeoutError as exc:
                if past_grace():  # stopping: give it back for another worker, no attempt lost
                    await asyncio.to_thread(self.queue.release, job.token, [job.id])
                    return
                await self._fail(job, str(exc), retryable=True)
                return
            except ArgusError as exc:
                await self._fail(job, exc.message, retryable=exc.status >= 500)
                return
            except Exception as exc:
                log.exception("training job %s failed unexpectedly", job.id)
                await self._fail(job, f"training failed: {type(exc).__name__}: {exc}",
                                 retryable=True)
                return
        await self._complete(job, result)

    async def _fail(self, job: Claimed, message: str, retryable: bool) -> None:
        status = await asyncio.to_thread(self.queue.fail, job.id, job.token, message, retryable)
        if status == "dead":
            self.stats.dead += 1
            log.warning("job %s is dead after %d attempt(s): %s", job.id, job.attempts, message)
        elif status == "failed":
            self.stats.failed += 1
            log.info("job %s failed (attempt %d), will retry: %s", job.id, job.attempts, message)
        else:
            self.stats.lost += 1

    async def _deliver(self) -> None:
        """Deliver due callbacks from the outbox until the worker stops: at once when this
        worker completed a job with one, else looking every second for any left behind."""
        import httpx

        async with httpx.AsyncClient(follow_redirects=False) as client:
            while True:
                sent = 0
                try:
                    if await asyncio.to_thread(self.outbox.has_due):
                        batch = await asyncio.to_thread(self.outbox.claim, self.owner)
                        results = await asyncio.gather(
                            *(self.outbox.send(client, d) for d in batch)
                        )
                        sent = len(results)
                        self.stats.callbacks += results.count("delivered")
                except Exception as exc:  # the database may blink; the next pass tries again
                    log.warning("callback delivery pass failed: %s", exc)
                if sent:
                    continue
                if self._last_delivery_pass:
                    return
                self._callback_due.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._callback_due.wait(), timeout=1.0)
