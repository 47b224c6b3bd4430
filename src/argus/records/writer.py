"""Writing prediction records: one background thread drains a queue, several rows per
transaction, so answering never waits for the database and a database problem never fails an
answer (it is logged)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from argus.contracts import Answer
from argus.db.schema import PredictionRecord

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
MAX_BATCH = 256
_IMAGE_FIELDS = ("crop_png", "png")


def _strip_images(value: Any) -> Any:
    """The answer without base64 crops or embedding vectors: records keep what was answered,
    not pictures, nor vectors (a face's vector identifies its person; the record says only how
    long it was)."""
    if isinstance(value, dict):
        out = {k: _strip_images(v) for k, v in value.items()
               if k not in _IMAGE_FIELDS and k != "embedding"}
        if isinstance(value.get("embedding"), list):
            out["embedding_dims"] = len(value["embedding"])
        return out
    if isinstance(value, list):
        return [_strip_images(v) for v in value]
    return value


def record_row(
    answer: Answer, source: str, app: str | None = None, job_id: str | None = None
) -> dict[str, Any]:
    """The prediction_records row for one answer."""
    timings: dict[str, Any] = answer.timings_ms.model_dump()
    if answer.steps:
        timings["steps"] = {name: step.ms for name, step in answer.steps.items()}
    return {
        "question": answer.question[:200],
        "image_sha256": answer.image.sha256,
        "width": answer.image.width,
        "height": answer.image.height,
        "models": [m.model_dump() for m in answer.models],
        "answer": _strip_images(answer.answer),
        "timings": timings,
        "source": source[:20],
        "app": app[:200] if app else None,
        "job_id": job_id[:40] if job_id else None,
        "created_at": datetime.now(UTC),
    }


class RecordWriter:
    """Writes records off the event loop. ``submit`` never blocks and never raises."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._rows: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argus-records")
        self._draining: Future[None] | None = None
        self.written = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, row: dict[str, Any]) -> None:
        with self._lock:
            if len(self._rows) >= MAX_PENDING:
                self._rows.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning(
                        "%d prediction records dropped: the database is not keeping up",
                        self.dropped,
                    )
            self._rows.append(row)
            if self._draining is None:
                try:
                    self._draining = self._pool.submit(self._drain)
                except RuntimeError:  # closed: nothing will write it
                    self._rows.pop()
                    self.dropped += 1

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._rows:
                    self._draining = None
                    return
                batch = [self._rows.popleft() for _ in range(min(MAX_BATCH, len(self._rows)))]
            try:
                with Session(self.engine) as session, session.begin():
                    session.execute(insert(PredictionRecord), batch)
                self.written += len(batch)
            except Exception as exc:
                self.failed += len(batch)
                log.error("could not write %d prediction record(s): %s", len(batch), exc)

    def flush(self) -> None:
        """Wait until every submitted record is written (or has failed)."""
        while True:
            with self._lock:
                pending = self._draining
            if pending is None:
                return
            pending.result()

    async def flush_async(self) -> None:
        await asyncio.to_thread(self.flush)

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
