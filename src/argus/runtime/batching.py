"""Dynamic batching: a queue of requests with one future each, drained in batches.

The wait timer starts at the first request of a batch; a batch leaves when it is full or when
``max_wait_ms`` has passed since that first request, whichever comes first. A lone request
therefore never waits longer than ``max_wait_ms``. Callers may announce requests that are still
being prepared (``expect``); in ``announced`` mode the batcher waits only while such requests
exist, so a lone request with nothing behind it leaves at once. If a whole batch fails, its
requests are retried one by one so that one bad request does not fail the others.

Up to ``lanes`` batches run at once, each on an executor thread of its own: while every lane
is busy, requests queue up and leave together in the next batch. An input may be
``Deferred``: it is made (decoded and preprocessed) on the lane's thread just before its batch
runs, so a request crosses threads once on its way in and once on its way out; a deferred
input that fails to be made fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from argus.engines.occupancy import OCCUPANCY
from argus.errors import Overloaded, Unavailable
from argus.futures import settle

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")


class Deferred(Generic[In]):
    """An input made by ``make()`` on the inference thread, right before its batch runs."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], In]) -> None:
        self.make = make


class _BatchFailed(Exception):
    """The model failed on a whole batch whose inputs were already made."""

    def __init__(self, cause: Exception, made: list[tuple[int, Any]],
                 failed: dict[int, Exception]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.made = made
        self.failed = failed


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    by_size: Counter[int] = field(default_factory=Counter)
    """Batches run, by their size (at most ``max_batch_size`` keys)."""

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.by_size[size] += 1


class Batcher(Generic[In, Out]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch_size: int = 8,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
        executor: Executor | None = None,
        lanes: int = 1,
        announced: bool = False,
        name: str = "model",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, not {max_wait_ms}")
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.executor = executor
        self.lanes = lanes
        self.name = name
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[In | Deferred[In], asyncio.Future[Out]]] | None = None
        self._free: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.incoming = 0
        """Requests announced with ``expect()`` that have not been submitted yet."""
        self.announced = announced
        """Wait only for announced requests (set by the first ``expect()`` too)."""

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _ensure_started(self) -> asyncio.Queue[tuple[In | Deferred[In], asyncio.Future[Out]]]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._free = asyncio.Semaphore(self.lanes)
            self._running = set()
            self._task = loop.create_task(self._drain(), name=f"batcher-{self.name}")
        return self._queue

    def expect(self) -> None:
        """Announce a request that will be submitted soon (call ``submit(expected=True)`` or
        ``unexpect()`` exactly once afterwards)."""
        self.announced = True
        self.incoming += 1

    def unexpect(self) -> None:
        self.incoming = max(0, self.incoming - 1)

    async def submit(self, item: In | Deferred[In], expected: bool = False) -> Out:
        if expected:
            self.unexpect()
        queue = self._ensure_started()
        if queue.qsize() >= self.max_queue:
            raise Overloaded(
                f"model {self.name} has {queue.qsize()} requests waiting (limit {self.max_queue}); "
                "retry shortly",
                retry_after=1.0,
            )
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        with OCCUPANCY.running():  # while held, no other request's inference runs "alone"
            queue.put_nowait((item, future))
            return await future

    async def _drain(self) -> None:
        queue, free = self._queue, self._free
        if queue is None or free is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            await free.acquire()  # a lane is free: the next batch may start
            first = await queue.get()
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                if self.incoming <= 0 and self.announced:
                    break  # nothing else is on its way: do not make this batch wait
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not live:
                free.release()
                continue
            task = loop.create_task(self._run(live), name=f"batch-{self.name}")
            running = self._running
            running.add(task)
            # Bound to this queue's semaphore and set: a restarted batcher has its own.
            task.add_done_callback(functools.partial(self._lane_done, free, running))

    def _lane_done(
        self, free: asyncio.Semaphore, running: set[asyncio.Task[None]], task: asyncio.Task[None]
    ) -> None:
        running.discard(task)
        free.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("batch on %s crashed: %s", self.name, task.exception())

    def _execute(
        self, items: Sequence[In | Deferred[In]], futures: Sequence[asyncio.Future[Out]]
    ) -> list[tuple[bool, Any]]:
        """On the lane's thread: make deferred inputs, run the batch; (ok, value) per item.
        Requests given up on meanwhile are skipped (reading ``cancelled()`` from this thread
        is a benign race: at worst one more image is worked on)."""
        made: list[tuple[int, Any]] = []
        failed: dict[int, Exception] = {}
        for i, item in enumerate(items):
            if futures[i].cancelled():
                failed[i] = asyncio.CancelledError()  # type: ignore[assignment]
            elif isinstance(item, Deferred):
                try:
                    made.append((i, item.make()))
                except Exception as exc:  # this request's input is bad, not the batch
                    failed[i] = exc
            else:
                made.append((i, item))
        if made:
            try:
                outputs = self.run_batch([x for _, x in made])
                if len(outputs) != len(made):
                    raise RuntimeError(
                        f"model {self.name} returned {len(outputs)} results for "
                        f"{len(made)} inputs"
                    )
            except Exception as exc:
                raise _BatchFailed(exc, made, failed) from exc
        else:
            outputs = []
        results: list[tuple[bool, Any]] = [(False, None)] * len(items)
        for i, error in failed.items():
            results[i] = (False, error)
        for (i, _), out in zip(made, outputs, strict=True):
            results[i] = (True, out)
        return results

    async def _run(self, batch: list[tuple[In | Deferred[In], asyncio.Future[Out]]]) -> None:
        loop = asyncio.get_running_loop()
        items = [item for item, _ in batch]
        self.stats.record(len(items))
        try:
            futures = [fut for _, fut in batch]
            results = await loop.run_in_executor(self.executor, self._execute, items, futures)
        except _BatchFailed as failure:
            for i, exc in failure.failed.items():
                settle(batch[i][1], error=exc)
            if len(failure.made) == 1:
                settle(batch[failure.made[0][0]][1], error=failure.cause)
                return
            log.warning("batch of %d failed on %s (%s); retrying one by one",
                        len(failure.made), self.name, failure.cause)
            for i, made in failure.made:
                try:
                    single = await loop.run_in_executor(self.executor, self.run_batch, [made])
                    settle(batch[i][1], value=single[0])
                except Exception as one_exc:
                    settle(batch[i][1], error=one_exc)
            return
        except Exception as exc:  # the executor itself failed (e.g. shut down)
            for _, fut in batch:
                settle(fut, error=exc)
            return
        for (_, fut), (ok, value) in zip(batch, results, strict=True):
            if ok:
                settle(fut, value=value)
            else:
                settle(fut, error=value)

    async def close(self) -> None:
        """Stop taking batches: requests still queued get 503 (retry: the model is being
        unloaded or the server stops); batches already on a lane finish and answer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
            self._task = None
        queue, self._queue = self._queue, None
        while queue is not None and not queue.empty():
            _, fut = queue.get_nowait()
            settle(fut, error=Unavailable(f"model {self.name} was unloaded; retry"))
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

