"""One ingest pipeline: source → question → sink, with quarantine and a checkpoint.

For each item: read it, hash it, skip it when the checkpoint says its digest is done, ask the
question, write the image and its sidecar to the sink, then write the prediction record (the
checkpoint) and only then tell the source it is finished (delete, or XACK). A crash anywhere
in between repeats at most the sink write, never the record.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from argus.contracts import Answer
from argus.errors import ConfigError
from argus.ingest.askers import Asker, BadImage, TryLater
from argus.ingest.checkpoint import Checkpoint
from argus.ingest.sinks import Sink
from argus.ingest.sources import Item

log = logging.getLogger(__name__)

OUTCOMES = ("done", "skipped", "quarantined", "retry")


class Source(Protocol):
    url: str

    def items(self, stop: asyncio.Event) -> AsyncIterator[Item]: ...

    def backlog(self) -> int: ...


@dataclass
class Stats:
    done: int = 0
    skipped: int = 0
    quarantined: int = 0
    retry: int = 0
    started: float = field(default_factory=time.monotonic)
    _recent: list[float] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "done":
            now = time.monotonic()
            self._recent.append(now)
            while self._recent and now - self._recent[0] > 10.0:
                self._recent.pop(0)

    def rate(self) -> float:
        """Images answered per second over the last ten seconds."""
        if len(self._recent) < 2:
            return float(len(self._recent))
        span = max(1.0, time.monotonic() - self._recent[0])
        return len(self._recent) / span

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "skipped": self.skipped,
            "quarantined": self.quarantined,
            "retry": self.retry,
            "rate": round(self.rate(), 2),
            "elapsed_s": round(time.monotonic() - self.started, 1),
        }


class Pipeline:
    def __init__(
        self,
        source: Source,
        asker: Asker,
        sink: Sink,
        checkpoint: Checkpoint,
        question: str,
        *,
        app: str | None = None,
        concurrency: int = 16,
        retries: int = 4,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.source = source
        self.asker = asker
        self.sink = sink
        self.checkpoint = checkpoint
        self.question = question
        self.app = app
        self.concurrency = concurrency
        self.retries = retries
        self.on_event = on_event or (lambda _e: None)
        self.stats = Stats()
        self.stopping = asyncio.Event()
        self._fatal: BaseException | None = None

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> Stats:
        """Ingest until stopped (or, for a finite source, until it has nothing more)."""
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        source_stop = asyncio.Event()

        async def forward_stop() -> None:
            await self.stopping.wait()
            source_stop.set()

        forwarder = asyncio.create_task(forward_stop())
        try:
            async for item in self.source.items(source_stop):
                await slots.acquire()
                if self._fatal is not None:
                    slots.release()
                    break
                task = asyncio.create_task(self._guarded(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _t: slots.release())
                if self.stopping.is_set():
                    break
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            forwarder.cancel()
            source_stop.set()
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    async def _guarded(self, item: Item) -> None:
        try:
            await self.process(item)
        except ConfigError as exc:
            self._fatal = exc
            self.stopping.set()
        except Exception as exc:  # the sink or database blinked: the item comes round again
            log.warning("ingest of %s failed, will retry: %s: %s", item.origin,
                        type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            self._event("retry", item, reason=f"{type(exc).__name__}: {exc}")
            await item.finish("retry")

    def _event(self, outcome: str, item: Item, **fields: Any) -> None:
        self.stats.count(outcome)
        self.on_event({"event": outcome, "name": item.name, "origin": item.origin, **fields})

    async def process(self, item: Item) -> str:
        started = time.perf_counter()
        try:
            data = await item.read()
        except FileNotFoundError:
            await item.finish("gone")  # removed before we got to it: nothing to do
            return "gone"
        except BadImage as exc:
            return await self._quarantine(item, None, exc.reason)
        except TryLater as exc:
            self._event("retry", item, reason=str(exc))
            await item.finish("retry")
            return "retry"
        digest = hashlib.sha256(data).hexdigest()
        if await asyncio.to_thread(self.checkpoint.is_done, digest):
            self._event("skipped", item, sha256=digest)
            await item.finish("skipped")
            return "skipped"
        answer = await self._ask(item, data)
        if answer is None:
            return "retry"
        if isinstance(answer, BadImage):
            return await self._quarantine(item, data, answer.reason)
        answered = answer.to_json()
        sidecar = {
            "file": item.name,
            "origin": item.origin,
            "sha256": digest,
            "bytes": len(data),
            **{key: answered[key] for key in ("question", "image", "models", "answer")},
            "timings_ms": answered["timings_ms"],
            "ingested_at": datetime.now(UTC).isoformat(),
        }
        await asyncio.to_thread(self.sink.write, item.name, data, sidecar)
        await asyncio.to_thread(self.checkpoint.commit, digest, answer, self.app)
        await item.finish("done")
        ms = round((time.perf_counter() - started) * 1000, 1)
        self._event("done", item, sha256=digest, ms=ms)
        return "done"

    async def _ask(self, item: Item, data: bytes) -> Answer | BadImage | None:
        delay = 1.0
        for attempt in range(self.retries + 1):
            try:
                return await self.asker.ask(data)
            except BadImage as exc:
                return exc
            except TryLater as exc:
                if attempt == self.retries or self.stopping.is_set():
                    self._event("retry", item, reason=str(exc))
                    await item.finish("retry")
                    return None
                log.info("%s: %s; trying again in %.0fs", item.origin, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
        return None

    async def _quarantine(self, item: Item, data: bytes | None, reason: str) -> str:
        await asyncio.to_thread(self.sink.quarantine, item.name, data, reason)
        await item.finish("quarantined")
        self._event("quarantined", item, reason=reason)
        return "quarantined"
