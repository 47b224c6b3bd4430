"""argus.ingest.checkpoint on SQLite and PostgreSQL: a pipeline's prediction record is its
checkpoint, written once per image digest however many writers race for it, and one pipeline's
records say nothing about another's."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from argus.contracts import Answer
from argus.db.engine import make_engine, migrate
from argus.ingest.checkpoint import Checkpoint, pipeline_id
from argus.records import find_records


def answer_json(sha256: str) -> dict[str, Any]:
    """An answer as a gateway sends it over the wire (README: every question answers this)."""
    return {
        "question": "labels",
        "image": {"sha256": sha256, "width": 600, "height": 400},
        "models": [{"name": "efficientnet-lite0", "version": 1, "digest": "sha256:ab"}],
        "answer": {"labels": [{"label": "espresso", "index": 967, "score": 0.957}]},
        "timings_ms": {"decode": 2.1, "infer": 9.0, "total": 12.5},
        "steps": {"labels": {"ms": 11.2, "cached": False}},
        "cached": False,
    }


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def test_pipeline_ids_are_stable_per_question_and_sink() -> None:
    one = pipeline_id("labels", "dir:/out")
    assert one == pipeline_id("labels", "dir:/out") and one.startswith("ingest:")
    assert len({one, pipeline_id("faces", "dir:/out"), pipeline_id("labels", "dir:/other")}) == 3


def test_the_record_is_the_checkpoint(engine: Engine) -> None:
    pipeline = pipeline_id("labels", "dir:/out")
    checkpoint = Checkpoint(engine, pipeline)
    digest = hashlib.sha256(b"the file as read").hexdigest()
    assert not checkpoint.is_done(digest)

    assert checkpoint.commit(digest, Answer.from_json(answer_json("0" * 64)), app="shop") is True
    assert checkpoint.is_done(digest) and checkpoint.count() == 1
    assert checkpoint.commit(digest, Answer.from_json(answer_json("0" * 64))) is False
    assert checkpoint.count() == 1

    (record,) = find_records(engine, source="ingest")
    assert record["image_sha256"] == digest  # the digest of the bytes the pipeline read
    assert (record["job_id"], record["app"], record["question"]) == (pipeline, "shop", "labels")
    assert record["answer"] == answer_json(digest)["answer"]
    assert record["timings"]["steps"] == {"labels": 11.2}

    elsewhere = Checkpoint(engine, pipeline_id("labels", "dir:/elsewhere"))
    assert not elsewhere.is_done(digest) and elsewhere.count() == 0


def test_racing_commits_write_one_record(engine: Engine) -> None:
    checkpoint = Checkpoint(engine, pipeline_id("labels", "dir:/race"))
    digest = hashlib.sha256(b"one image, many writers").hexdigest()
    start = threading.Barrier(8)
    wrote: list[bool] = []

    def commit() -> None:
        start.wait()
        wrote.append(checkpoint.commit(digest, Answer.from_json(answer_json(digest))))

    writers = [threading.Thread(target=commit) for _ in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert sorted(wrote) == [False] * 7 + [True]
    assert checkpoint.count() == 1
