"""Dynamic batching: a queue of requests with one future each, drained in batches.

The wait timer starts at the first request of a batch; a batch leaves when it is full or when
``max_wait_ms`` has passed since that first request, whichever comes first. A lone request
therefore never waits longer than ``max_wait_ms``. Callers may announce requests that are still
being decoded (``expect``); the batcher only waits while such requests exist, so a lone request
with nothing behind it leaves at once. If a whole batch fails, its requests are retried one by
one so that one bad request does not fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from argus.errors import Overloaded

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    sizes: list[int] = field(default_factory=list)

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        if len(self.sizes) < 10_000:
            self.sizes.append(size)


class Batcher(Generic[In, Out]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch_size: int = 8,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
        executor: Executor | None = None,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, not {max_wait_ms}")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.executor = executor
        self.name = name
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.incoming = 0
        self.expect_mode = False
        """True once any caller uses ``expect``: from then on waits only for announced work."""
        """Requests announced with ``expect()`` that have not been submitted yet."""

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _ensure_started(self) -> asyncio.Queue[tuple[In, asyncio.Future[Out]]]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._drain(), name=f"batcher-{self.name}")
        return self._queue

    def expect(self) -> None:
        """Announce a request that will be submitted soon (call ``submit(expected=True)`` or
        ``unexpect()`` exactly once afterwards)."""
        self.expect_mode = True
        self.incoming += 1

    def unexpect(self) -> None:
        self.incoming = max(0, self.incoming - 1)

    async def submit(self, item: In, expected: bool = False) -> Out:
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
        queue.put_nowait((item, future))
        return await future

    async def _drain(self) -> None:
        queue = self._queue
        if queue is None:
            return
        while True:
            first = await queue.get()
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                if self.incoming <= 0 and self.expect_mode:
                    break  # nothing else is on its way: do not make this batch wait
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if live:
                await self._run(live)

    async def _run(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        loop = asyncio.get_running_loop()
        items = [item for item, _ in batch]
        self.stats.record(len(items))
        if self.on_batch is not None:
            self.on_batch(len(items))
        try:
            outputs = await loop.run_in_executor(self.executor, self.run_batch, items)
            if len(outputs) != len(items):
                raise RuntimeError(
                    f"model {self.name} returned {len(outputs)} results for {len(items)} inputs"
                )
        except Exception as exc:
            if len(items) == 1:
                _settle(batch[0][1], error=exc)
                return
            log.warning(
                "batch of %d failed on %s (%s); retrying one by one", len(items), self.name, exc
            )
            for item, fut in batch:
                try:
                    single = await loop.run_in_executor(self.executor, self.run_batch, [item])
                    _settle(fut, value=single[0])
                except Exception as one_exc:
                    _settle(fut, error=one_exc)
            return
        for (_, fut), out in zip(batch, outputs, strict=True):
            _settle(fut, value=out)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
            self._task = None


def _settle(
    fut: asyncio.Future[Any], value: Any = None, error: BaseException | None = None
) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)
