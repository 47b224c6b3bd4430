"""The model host, the in-process :class:`~argus.runtime.runner.ModelRunner`: loads model
versions on demand, one shared instance per package digest, each behind its own batcher, and
answers a model step: decode → prepare → batch → finish. Loading one model never blocks answers
from loaded ones.

A step on the request's image decodes and preprocesses on the inference lane, just before its
batch runs (one thread hand-off in, one out); the decoded image is shared with later steps of
the same graph through the :class:`~argus.images.ImageSource`."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from argus.engines import RuntimeChoice
from argus.futures import settle
from argus.images import DecodedImage, ImageSource
from argus.manifest import ModelPackage
from argus.models.packages import PackageStore
from argus.models.versions import VersionInfo
from argus.runtime.batching import Batcher, Deferred
from argus.runtime.runner import ModelAnswer
from argus.settings import Settings
from argus.tasks import load_task_model
from argus.tasks.base import TaskModel

log = logging.getLogger(__name__)


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Loaded:
    version: VersionInfo
    model: TaskModel
    batcher: Batcher[Any, Any]
    memory_bytes: int
    runtime: str  # engine and precision, e.g. onnxruntime-f32, openvino-bf16
    loaded_at: float
    last_used: float


class ModelHost:
    """Models in this process (see the module docstring)."""

    def __init__(
        self,
        store: PackageStore,
        *,
        threads: int = 1,
        max_batch_size: int | None = None,
        max_wait_ms: float | None = None,
        max_queue: int = 256,
        memory_budget_mb: int = 0,
        runtime: str | None = None,
        precision: str | None = None,
        lanes: int = 1,
        lone_threads: int = 0,
    ) -> None:
        self.runtime = runtime
        self.precision = precision
        self.store = store
        self.threads = threads
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_queue = max_queue
        self.lanes = max(1, lanes)
        self.lone_threads = lone_threads
        self.memory_budget = memory_budget_mb * 1024 * 1024
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Loaded]] = {}
        self._load_lock = threading.Lock()  # one load at a time keeps RSS deltas honest
        self.infer_pool = ThreadPoolExecutor(
            max_workers=max(2, self.lanes), thread_name_prefix="argus-infer"
        )
        self.load_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argus-load")
        self.events: dict[str, int] = {"loads": 0, "unloads": 0}
        self._measured: dict[str, int] = {}  # package digest → bytes its loads took
        self._retiring: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, store: PackageStore, settings: Settings) -> ModelHost:
        return cls(
            store,
            threads=settings.threads_per_session(),
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            memory_budget_mb=settings.model_memory_mb,
            runtime=settings.runtime,
            precision=settings.precision,
            lanes=settings.lane_count(),
            lone_threads=settings.lone_thread_count(),
        )

    def loaded(self) -> list[Loaded]:
        return list(self._loaded.values())

    def is_loaded(self, digest: str) -> bool:
        return digest in self._loaded

    async def load(self, version: VersionInfo) -> None:
        await self.get(version)

    # -- answering -----------------------------------------------------------------------

    async def answer(
        self, version: VersionInfo, source: ImageSource, params: dict[str, Any]
    ) -> ModelAnswer:
        entry = await self.get(version)
        model, batcher = entry.model, entry.batcher
        pending = source.decoding(model.decode_size)
        started = time.perf_counter()
        if pending is not None:  # another step decodes (or decoded) this size: share it
            image = await asyncio.shield(pending)
            raw = await batcher.submit(Deferred(lambda: model.prepare(image, params)))
        else:
            # Decode and preprocess on the inference lane, just before the batch runs. The
            # decoded image is shared with later steps.
            claimed = source.claim(model.decode_size)
            loop = asyncio.get_running_loop()
            made: list[DecodedImage] = []
            decode_error: list[Exception] = []
            making = [0.0]  # seconds the lane spent decoding and preprocessing

            def make() -> Any:
                t0 = time.perf_counter()
                try:
                    try:
                        made.append(source.decode_now(model.decode_size))
                    except Exception as exc:
                        decode_error.append(exc)
                        raise
                    # Steps waiting for this size go on now, not after this model's batch.
                    loop.call_soon_threadsafe(settle, claimed, made[0])
                    return model.prepare(made[0], params)
                finally:
                    making[0] = time.perf_counter() - t0

            try:
                raw = await batcher.submit(Deferred(make))
            except BaseException as exc:
                if made:
                    settle(claimed, made[0])
                elif decode_error:  # the image itself is bad: every step fails alike
                    settle(claimed, error=decode_error[0])
                elif isinstance(exc, Exception):  # e.g. this model is overloaded: steps
                    source.unclaim(model.decode_size, claimed)  # waiting decode it themselves
                else:  # cancelled with the request
                    claimed.cancel()
                raise
            image = made[0]
            settle(claimed, image)
            started += making[0]  # infer_ms is the wait and the model, not the decode
        infer_ms = (time.perf_counter() - started) * 1000
        if params.get("crops"):  # encoding crops is real work: keep it off the event loop
            result = await asyncio.to_thread(model.finish, raw, image, params)
        else:
            result = model.finish(raw, image, params)
        return ModelAnswer(result, raw, infer_ms)

    async def answer_crops(
        self, version: VersionInfo, crops: Sequence[DecodedImage], params: dict[str, Any]
    ) -> list[ModelAnswer]:
        if not crops:
            return []
        entry = await self.get(version)
        model, batcher = entry.model, entry.batcher

        def prepare_all() -> list[Any]:
            return [model.prepare(one, params) for one in crops]

        for _ in crops:
            batcher.expect()
        try:
            prepared = await asyncio.to_thread(prepare_all)
        except BaseException:
            for _ in crops:
                batcher.unexpect()
            raise
        started = time.perf_counter()
        # Every crop is announced and queued before any is awaited: the batcher takes them
        # together, in batches of its max_batch_size.
        raws = await asyncio.gather(*(batcher.submit(p, expected=True) for p in prepared))
        infer_ms = (time.perf_counter() - started) * 1000

        def finish_all() -> list[ModelAnswer]:
            return [
                ModelAnswer(model.finish(raw, one, params), raw, infer_ms)
                for raw, one in zip(raws, crops, strict=True)
            ]

        return await asyncio.to_thread(finish_all)

    # -- loading -------------------------------------------------------------------------

    async def get(self, version: VersionInfo) -> Loaded:
        entry = self._loaded.get(version.digest)
        if entry is not None:
            entry.last_used = time.monotonic()
            self._loaded.move_to_end(version.digest)
            return entry
        pending = self._loading.get(version.digest)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.create_future()
            self._loading[version.digest] = pending
            try:
                # Load on a thread of its own so answers from loaded models keep flowing
                # meanwhile (the shared decode pool may be a single thread).
                entry = await loop.run_in_executor(self.load_pool, self._load_sync, version)
                self._loaded[version.digest] = entry
                self._evict(keep=version.digest)
                pending.set_result(entry)
            except BaseException as exc:
                pending.set_exception(exc)
                # Mark the exception retrieved: other waiters may not exist.
                pending.exception()
                raise
            finally:
                self._loading.pop(version.digest, None)
            return entry
        return await asyncio.shield(pending)

    def _load_sync(self, version: VersionInfo) -> Loaded:
        with self._load_lock:
            before = rss_bytes()
            started = time.perf_counter()
            package = self.store.load(version.digest)
            choice = replace(
                RuntimeChoice.resolve(package.runtime, self.runtime, self.precision),
                lanes=self.lanes,
                lone_threads=self.lone_threads,
            )
            model = load_task_model(package, self.threads, choice)
            memory = self._memory_of(package, rss_bytes() - before)
            batch = self.max_batch_size or model.max_batch_size
            wait = self.max_wait_ms if self.max_wait_ms is not None else model.max_wait_ms
            batcher: Batcher[Any, Any] = Batcher(
                model.infer,
                max_batch_size=batch,
                max_wait_ms=wait,
                max_queue=self.max_queue,
                executor=self.infer_pool,
                lanes=self.lanes,
                announced=True,
                name=f"{version.name}:{version.number}",
            )
            now = time.monotonic()
            self.events["loads"] += 1
            log.info(
                "loaded %s:%s (%s) in %.0f ms, %.1f MB",
                version.name,
                version.number,
                version.digest[:19],
                (time.perf_counter() - started) * 1000,
                memory / 2**20,
            )
            runtime = f"{choice.engine}-{choice.precision}"
            return Loaded(version, model, batcher, memory, runtime, now, now)

    def _memory_of(self, package: ModelPackage, growth: int) -> int:
        """What a loaded version holds: the RSS growth its load measured, but never less than
        its ONNX files (the weights the sessions keep) nor than an earlier load of the same
        package measured. Another thread's allocations or a reused arena can make one
        measurement small; the budget must hold anyway."""
        weights = sum(path.stat().st_size for path in package.onnx_files().values())
        memory = max(growth, weights, self._measured.get(package.digest, 0))
        self._measured[package.digest] = memory
        return memory

    def _evict(self, keep: str) -> None:
        if self.memory_budget <= 0:
            return
        while sum(e.memory_bytes for e in self._loaded.values()) > self.memory_budget:
            victim = next((d for d in self._loaded if d != keep), None)
            if victim is None:
                return
            entry = self._loaded.pop(victim)
            if entry.batcher.depth:
                self._loaded[victim] = entry  # busy: keep it, try again on the next load
                return
            asyncio.get_running_loop().create_task(entry.batcher.close())
            entry.model.close()
            self.events["unloads"] += 1
            log.info(
                "unloaded %s:%s to stay within the memory budget",
                entry.version.name,
                entry.version.number,
            )

    def retire(self, live: set[str]) -> None:
        """Unload versions removed from the registry: nothing resolves them any more, so they
        leave at once; requests already queued on one are still answered before it closes."""
        for digest in [d for d in self._loaded if d not in live]:
            entry = self._loaded.pop(digest)
            task = asyncio.get_running_loop().create_task(self._unload_when_idle(entry))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _unload_when_idle(self, entry: Loaded) -> None:
        while entry.batcher.depth:
            await asyncio.sleep(0.05)
        await entry.batcher.close()
        entry.model.close()
        self.events["unloads"] += 1
        log.info("unloaded %s:%s: removed from the registry", entry.version.name,
                 entry.version.number)

    async def close(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for entry in list(self._loaded.values()):
            await entry.batcher.close()
        self._loaded.clear()
        self.infer_pool.shutdown(wait=False, cancel_futures=True)
        self.load_pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["Loaded", "ModelHost", "rss_bytes"]
