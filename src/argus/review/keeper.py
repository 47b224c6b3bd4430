"""Which answers keep their image for review, kept off the request's path.

The core hands every answer to :meth:`Keeper.consider` when keep-uncertain is on for the
request. Only classify steps on the whole image count: their answer is one class for the image,
which is what a person labels and what a dataset folder holds (detections and faces would need
boxes labelled, which a class folder cannot say). A step is a candidate when its top score is
below the threshold, or when its model runs a canary and the step was answered by one side
(production or canary): the other side is then asked the same image, and the image is kept
when their top labels differ.

``consider`` only looks at the answer and queues; asking the other side and writing the image
happen in one background task per process, after the answer has gone. The queue is bounded
(count and bytes): when it is full the image is dropped and counted, never waited for. Any
failure to keep is logged and counted, never the client's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from argus.graphs.executor import GraphResult
from argus.models.registry import CANARY, PRODUCTION
from argus.models.resolutions import Resolutions
from argus.models.versions import VersionInfo
from argus.review.dataset import extension
from argus.review.store import Keep, ReviewStore
from argus.tasks import TASKS

log = logging.getLogger(__name__)

MAX_PENDING = 64
MAX_PENDING_BYTES = 64 * 1024 * 1024
CLOSE_SECONDS = 10.0
#: What the metrics count: kept, already (the image was kept before), dropped (the queue was
#: full), failed (keeping or asking the other side failed), compared (canary answers asked).
EVENTS = ("kept", "already", "dropped", "failed", "compared")

AskOther = Callable[[VersionInfo, bytes, str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answer (version, image bytes, image digest, task params) with exactly that version."""


@dataclass(frozen=True)
class Seen:
    """One classify step's answer worth a look."""

    version: VersionInfo
    labels: list[dict[str, Any]]
    uncertain: bool
    other: VersionInfo | None
    """The other side of the model's canary, to ask the same image (None: no canary)."""


@dataclass(frozen=True)
class Pending:
    question: str
    data: bytes
    digest: str
    ext: str
    threshold: float
    params: dict[str, Any]
    source: str
    app: str | None
    seen: tuple[Seen, ...]


def _classifies(version: VersionInfo) -> bool:
    """A version whose answer is one class per image (the classify task's ``labels``); asked
    of its task, since a built-in graph's steps do not know their models' tasks."""
    task = TASKS.get(version.task)
    return task is not None and task.answer_kind == "labels"


def top(labels: list[dict[str, Any]]) -> tuple[str, float]:
    first = labels[0]
    return str(first.get("label", "")), float(first.get("score", 0.0))


class Keeper:
    def __init__(self, store: ReviewStore, resolutions: Resolutions, ask_other: AskOther
                 ) -> None:
        self.store = store
        self.resolutions = resolutions
        self.ask_other = ask_other
        self.counts: Counter[str] = Counter()
        self._pending: deque[Pending] = deque()
        self._bytes = 0
        self._task: asyncio.Task[None] | None = None

    def events(self) -> Mapping[str, int]:
        """Counts of what happened to the images considered (for metrics)."""
        return {event: self.counts[event] for event in EVENTS}

    # -- on the request's path: look and queue, nothing more ----------------------------

    def consider(
        self,
        question: str,
        data: bytes,
        digest: str,
        image_format: str | None,
        result: GraphResult,
        threshold: float,
        params: dict[str, Any],
        source: str = "http",
        app: str | None = None,
    ) -> None:
        """Queue the image when one of ``result``'s classify steps is below ``threshold`` or
        has a canary to compare with. Never raises, never waits."""
        try:
            seen = tuple(self._candidates(result, threshold))
            if seen:
                self._queue(Pending(question, data, digest, extension(image_format), threshold,
                                    params, source, app, seen))
        except Exception:
            self.counts["failed"] += 1
            log.exception("could not consider the answer to %s for review", question)

    def _candidates(self, result: GraphResult, threshold: float) -> list[Seen]:
        out = []
        for name, run in result.runs.items():
            step = result.spec.steps[name]
            if (run.version is None or run.output is None or run.skipped is not None
                    or step.input is not None or not _classifies(run.version)):
                continue
            labels = run.output.result.get("labels") or []
            if not labels:
                continue
            uncertain = top(labels)[1] < threshold
            other = self.other_side(run.version)
            if uncertain or other is not None:
                out.append(Seen(run.version, labels, uncertain, other))
        return out

    def other_side(self, version: VersionInfo) -> VersionInfo | None:
        """When ``version``'s model runs a canary and ``version`` is its production or its
        canary: the other one (cached until the registry changes)."""
        aliases = self.resolutions.derived(
            ("review-aliases", version.name),
            lambda: self.resolutions.registry.show(version.name).aliases,
        )
        canary, production = aliases.get(CANARY), aliases.get(PRODUCTION)
        if canary is None or production is None or canary == production:
            return None
        if version.number == production:
            return self.resolutions.resolve(version.name, version=canary)
        if version.number == canary:
            return self.resolutions.resolve(version.name, version=production)
        return None

    def _queue(self, item: Pending) -> None:
        if len(self._pending) >= MAX_PENDING or self._bytes + len(item.data) > MAX_PENDING_BYTES:
            self.counts["dropped"] += 1
            if self.counts["dropped"] == 1 or self.counts["dropped"] % 100 == 0:
                log.warning("%d image(s) not kept for review: the review queue is full",
                            self.counts["dropped"])
            return
        self._pending.append(item)
        self._bytes += len(item.data)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="argus-review"
            )

    # -- after the answer ----------------------------------------------------------------

    async def _drain(self) -> None:
        while self._pending:
            item = self._pending.popleft()
            self._bytes -= len(item.data)
            try:
                await self._keep(item)
            except Exception as exc:
                self.counts["failed"] += 1
                log.error("could not keep image %s for review: %s", item.digest[:12], exc)

    async def _keep(self, item: Pending) -> None:
        for seen in item.seen:
            guess, score = top(seen.labels)
            reason = "uncertain" if seen.uncertain else None
            detail: dict[str, Any] = {"labels": seen.labels[:5], "threshold": item.threshold}
            if seen.other is not None:
                other = await self._other_top(item, seen.other)
                if other is not None:
                    detail["other"] = {"version": seen.other.number, "label": other[0],
                                       "score": other[1]}
                    if other[0] != guess:
                        reason = "disagreement"
            if reason is None:
                continue
            keep = Keep(
                digest=item.digest, data=item.data, ext=item.ext, model=seen.version.name,
                version=seen.version.number, question=item.question, guess=guess, score=score,
                reason=reason, detail=detail, source=item.source, app=item.app,
            )
            kept = await asyncio.to_thread(self.store.keep, keep)
            self.counts["kept" if kept else "already"] += 1
            return  # an image is kept once, for the first model that kept it

    async def _other_top(self, item: Pending, version: VersionInfo) -> tuple[str, float] | None:
        """The other side's top (label, score); None when it could not answer (logged)."""
        try:
            answer = await self.ask_other(version, item.data, item.digest, item.params)
        except Exception as exc:
            self.counts["failed"] += 1
            log.error("could not ask %s version %d for review: %s", version.name,
                      version.number, getattr(exc, "message", exc))
            return None
        self.counts["compared"] += 1
        labels = answer.get("labels") or []
        return top(labels) if labels else None

    async def idle(self) -> None:
        """Wait until everything queued is kept (or has failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Finish what is queued, for at most ``CLOSE_SECONDS``; the rest is dropped."""
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_SECONDS)
        except TimeoutError:
            self.counts["dropped"] += len(self._pending)
            self._pending.clear()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
