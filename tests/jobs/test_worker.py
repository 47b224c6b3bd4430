"""The worker in process: requests that cannot succeed die at once with the reason; an idle
PostgreSQL worker is woken by NOTIFY instead of polling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from argus.contracts import AskOptions
from argus.errors import ConfigError
from argus.jobs import open_queue
from argus.jobs.queue import Wakeup
from argus.jobs.types import JobPolicy
from argus.jobs.worker import Worker
from argus.server import local_core
from argus.settings import Settings
from tests.jobs.test_http_jobs import drain


def test_hopeless_jobs_die_with_their_reason(
    tiny_settings: Settings, photos: dict[str, bytes]
) -> None:
    queue = open_queue(tiny_settings)
    # Straight into the queue, past the checks a transport makes at submit time.
    unknown, _ = queue.submit("nope", photos["coffee"])
    garbage, _ = queue.submit("tiny", b"GIF89a but not really")
    lost, _ = queue.submit("tiny", photos["rocket"])
    queue.images.path(lost.image_sha256).unlink()
    good, _ = queue.submit("tiny", photos["china"], options=AskOptions(top_k=1))

    stats = drain(tiny_settings, JobPolicy())
    assert (stats["done"], stats["dead"]) == (1, 3)
    for job_id, reason in ((unknown.id, "no question named 'nope'"),
                           (garbage.id, "image"),
                           (lost.id, "not in the image store")):
        job = queue.get(job_id)
        assert job.status == "dead" and job.attempts == 1, job
        assert reason in (job.error or "")
    assert queue.get(good.id).answer["answer"]["labels"][0]["label"] in (  # type: ignore[index]
        "red", "green", "blue", "grey"
    )
    queue.engine.dispose()


def test_notify_wakes_an_idle_postgres_worker(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=postgres_url)
    queue = open_queue(settings)
    wakeup = Wakeup(queue.engine)
    assert wakeup.listening
    try:
        assert wakeup.wait(0.2) is False
        timer = threading.Timer(0.3, lambda: queue.submit("tiny", b"x"))
        timer.start()
        started = time.monotonic()
        assert wakeup.wait(10) is True
        assert time.monotonic() - started < 3
        timer.join()
    finally:
        wakeup.close()
        queue.engine.dispose()


def test_sqlite_has_no_listener(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    queue = open_queue(settings)
    assert Wakeup(queue.engine).listening is False
    queue.engine.dispose()


def test_worker_refuses_nonsense(tiny_settings: Settings) -> None:
    queue = open_queue(tiny_settings)
    with pytest.raises(ConfigError, match="at least 1"):
        Worker(local_core(tiny_settings), queue, concurrency=0)
    queue.engine.dispose()
