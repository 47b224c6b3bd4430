"""Dynamic batching semantics: order, max wait, batch size, error isolation, queue bound."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from argus.errors import Overloaded, Unavailable
from argus.runtime.batching import Batcher, Deferred


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail_on = fail_on or set()
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int]:
        with self.lock:
            self.batches.append(list(items))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on & set(items):
            raise ValueError(f"cannot handle {sorted(self.fail_on & set(items))}")
        return [i * 10 for i in items]


def test_results_come_back_to_their_own_callers_in_order() -> None:
    rec = Recorder(delay=0.01)
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=4, max_wait_ms=20)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(10))))

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert max(len(b) for b in rec.batches) <= 4
    assert [i for b in rec.batches for i in b] == list(range(10))  # arrival order kept
    assert len(rec.batches) < 10  # requests were actually batched


def test_a_lone_request_waits_no_longer_than_max_wait() -> None:
    rec = Recorder()
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=8, max_wait_ms=50)

    async def main() -> float:
        t0 = time.perf_counter()
        await batcher.submit(1)
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    assert rec.batches == [[1]]
    assert 0.04 <= elapsed < 1.0  # held for the batch window, then sent alone


def test_a_full_batch_leaves_without_waiting_for_the_timer() -> None:
    rec = Recorder()
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=3, max_wait_ms=5_000)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(3))))

    t0 = time.perf_counter()
    assert asyncio.run(main()) == [0, 10, 20]
    assert time.perf_counter() - t0 < 4.0
    assert rec.batches == [[0, 1, 2]]


def test_timer_starts_at_the_first_request_of_a_batch() -> None:
    rec = Recorder()
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=10, max_wait_ms=100)

    async def main() -> None:
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.06)
        second = asyncio.create_task(batcher.submit(2))
        await asyncio.gather(first, second)
        third = asyncio.create_task(batcher.submit(3))
        await third

    asyncio.run(main())
    assert rec.batches == [[1, 2], [3]]


def test_one_bad_request_does_not_fail_the_others() -> None:
    rec = Recorder(fail_on={3})
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=8, max_wait_ms=20)

    async def main() -> list[object]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(6)),
                                         return_exceptions=True))

    results = asyncio.run(main())
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 10, 20, 40, 50]


def test_queue_bound_answers_overloaded_at_once() -> None:
    rec = Recorder(delay=0.2)
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=1, max_wait_ms=0, max_queue=2)

    async def main() -> list[object]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(8)),
                                         return_exceptions=True))

    results = asyncio.run(main())
    overloaded = [r for r in results if isinstance(r, Overloaded)]
    assert overloaded, results
    assert all(r.retry_after >= 1 for r in overloaded)
    assert [r for r in results if isinstance(r, int)] == [0, 10, 20][: len(results)
                                                                   - len(overloaded)]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Batcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        Batcher(Recorder(), max_wait_ms=-1)


def test_announced_requests_are_waited_for_and_a_lone_one_is_not() -> None:
    rec = Recorder()
    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=8, max_wait_ms=500)

    async def lone() -> float:
        batcher.expect()
        t0 = time.perf_counter()
        await batcher.submit(1, expected=True)
        return time.perf_counter() - t0

    async def announced() -> None:
        batcher.expect()
        batcher.expect()
        first = asyncio.create_task(batcher.submit(2, expected=True))
        await asyncio.sleep(0.05)  # the second is still "decoding"
        second = asyncio.create_task(batcher.submit(3, expected=True))
        await asyncio.gather(first, second)

    assert asyncio.run(lone()) < 0.25  # did not sit out the 500 ms window
    asyncio.run(announced())
    assert rec.batches == [[1], [2, 3]]


def test_lanes_run_batches_at_once_and_queue_behind_busy_lanes() -> None:
    def run(lanes: int) -> tuple[int, list[list[int]]]:
        batches: list[list[int]] = []
        started = threading.Semaphore(0)
        gate = threading.Event()
        running = [0, 0]  # now, most at once
        lock = threading.Lock()

        def model(items: Sequence[int]) -> list[int]:
            with lock:
                batches.append(list(items))
                running[0] += 1
                running[1] = max(running)
            started.release()
            gate.wait(10)  # held until the test has queued what it wants behind it
            with lock:
                running[0] -= 1
            return [i * 10 for i in items]

        pool = ThreadPoolExecutor(max_workers=4)
        batcher: Batcher[int, int] = Batcher(
            model, max_batch_size=4, max_wait_ms=0, executor=pool, lanes=lanes, announced=True
        )

        async def on_a_lane() -> None:
            assert await asyncio.to_thread(started.acquire, True, 10), "no batch started"

        async def main() -> None:
            first = asyncio.create_task(batcher.submit(0))
            await on_a_lane()
            second = asyncio.create_task(batcher.submit(1))
            if lanes > 1:
                await on_a_lane()  # the second lane takes it at once
            later = [asyncio.create_task(batcher.submit(i)) for i in range(2, 5)]
            for _ in range(5):
                await asyncio.sleep(0)  # every submit is queued behind the busy lanes
            gate.set()
            assert await asyncio.gather(first, second, *later) == [0, 10, 20, 30, 40]

        asyncio.run(main())
        pool.shutdown()
        return running[1], batches

    # Two lanes: 0 and 1 run side by side; 2, 3 and 4 queue while both are busy and leave
    # together. One lane: 1 to 4 all queue behind 0.
    assert run(2) == (2, [[0], [1], [2, 3, 4]])
    assert run(1) == (1, [[0], [1, 2, 3, 4]])


def test_closing_answers_queued_requests_instead_of_leaving_them_waiting() -> None:
    gate = threading.Event()
    started = threading.Event()

    def model(items: Sequence[int]) -> list[int]:
        started.set()
        gate.wait(10)
        return [i * 10 for i in items]

    pool = ThreadPoolExecutor(max_workers=2)
    batcher: Batcher[int, int] = Batcher(model, max_batch_size=1, max_wait_ms=0, executor=pool)

    async def main() -> list[object]:
        calls = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
        assert await asyncio.to_thread(started.wait, 10)  # 0 is on the lane; 1, 2 queue
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0)
        gate.set()
        await closing
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(asyncio.wait_for(main(), 10))
    pool.shutdown()
    assert results[0] == 0  # the batch already running finished and answered
    assert all(isinstance(r, Unavailable) and r.status == 503 for r in results[1:])


def test_deferred_inputs_are_made_on_the_lane_and_fail_alone() -> None:
    rec = Recorder()
    loop_thread: list[int] = []
    made_on: list[int] = []

    def make(i: int) -> Callable[[], int]:
        def inner() -> int:
            made_on.append(threading.get_ident())
            if i == 2:
                raise ValueError("image 2 is truncated")
            return i

        return inner

    batcher: Batcher[int, int] = Batcher(rec, max_batch_size=8, max_wait_ms=20)

    async def main() -> list[object]:
        loop_thread.append(threading.get_ident())
        return list(await asyncio.gather(
            *(batcher.submit(Deferred(make(i))) for i in range(4)), return_exceptions=True
        ))

    results = asyncio.run(main())
    assert results[:2] == [0, 10] and results[3] == 30
    assert isinstance(results[2], ValueError) and "truncated" in str(results[2])
    assert rec.batches == [[0, 1, 3]]  # the bad one never reached the model
    assert loop_thread[0] not in made_on
