"""What a pipeline has finished, kept as its prediction records.

The record *is* the checkpoint: an image digest is done for a pipeline when a record with the
pipeline's id exists, and the record is written (under a lock, after the sink write) only if it
does not exist yet. So a pipeline killed at any point and started again writes each image's
record exactly once, and may at most rewrite the same sink files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, insert, select, text

from argus.contracts import Answer
from argus.db.schema import PredictionRecord
from argus.records import record_row

SOURCE = "ingest"


def pipeline_id(question: str, sink_url: str) -> str:
    """Stable id of (question, sink): stored in the records' ``job_id`` column."""
    return "ingest:" + hashlib.sha256(f"{question}\n{sink_url}".encode()).hexdigest()[:16]


class Checkpoint:
    def __init__(self, engine: Engine, pipeline: str) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.dialect = engine.dialect.name

    def _done(self, conn: Connection, digest: str) -> bool:
        return (
            conn.execute(
                select(PredictionRecord.id)
                .where(
                    PredictionRecord.job_id == self.pipeline,
                    PredictionRecord.image_sha256 == digest,
                    PredictionRecord.source == SOURCE,
                )
                .limit(1)
            ).first()
            is not None
        )

    def is_done(self, digest: str) -> bool:
        with self.engine.connect() as conn:
            return self._done(conn, digest)

    @contextmanager
    def _locked(self, digest: str) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if self.dialect == "postgresql":
                    key = int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                yield conn

    def commit(self, digest: str, answer: Answer, app: str | None = None) -> bool:
        """Write the record unless one exists; True when this call wrote it."""
        with self._locked(digest) as conn:
            if self._done(conn, digest):
                return False
            row = record_row(answer, SOURCE, app=app, job_id=self.pipeline)
            row["image_sha256"] = digest
            conn.execute(insert(PredictionRecord).values(**row))
            return True

    def count(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(PredictionRecord.job_id == self.pipeline)
                ).scalar_one()
            )
