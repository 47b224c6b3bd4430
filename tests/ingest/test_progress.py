"""argus.ingest.progress: ``--json-log`` writes one JSON object per line (each event, and the
stats with the backlog at start, stop and every ``every`` seconds); the display for people
prints each quarantined file with its reason."""

from __future__ import annotations

import json

import pytest

from argus.ingest.pipeline import Stats
from argus.ingest.progress import Display, JsonLog


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_json_log_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()
    log = JsonLog(lambda: stats, lambda: 7, every=3600)
    log.summary("started")
    stats.count("done")
    log.emit({"event": "done", "name": "a.jpg", "origin": "/in/a.jpg", "ms": 4.2})
    stats.count("quarantined")
    log.emit({"event": "quarantined", "name": "b.jpg", "origin": "/in/b.jpg",
              "reason": "the data is not an image"})
    log.summary("stopped")

    written = lines(capsys.readouterr().out)
    assert [w["event"] for w in written] == ["started", "done", "quarantined", "stopped"]
    assert all(isinstance(w["at"], float) for w in written)
    assert written[1] == {"at": written[1]["at"], "event": "done", "name": "a.jpg",
                          "origin": "/in/a.jpg", "ms": 4.2}
    assert written[2]["reason"] == "the data is not an image"
    stopped = written[-1]
    assert (stopped["done"], stopped["quarantined"], stopped["skipped"], stopped["retry"]) == (
        1, 1, 0, 0
    )
    assert stopped["backlog"] == 7 and {"rate", "elapsed_s"} <= set(stopped)


def test_json_log_adds_the_stats_when_they_are_due(capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()
    log = JsonLog(lambda: stats, lambda: 0, every=0)
    log.emit({"event": "skipped", "name": "a.jpg"})
    log.emit({"event": "skipped", "name": "b.jpg"})
    assert [w["event"] for w in lines(capsys.readouterr().out)] == [
        "skipped", "stats", "skipped", "stats"
    ]


def test_the_display_names_each_quarantined_file(capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()
    display = Display("ingest labels", lambda: stats, lambda: 0)
    display.emit({"event": "done", "name": "a.jpg"})
    display.emit({"event": "quarantined", "name": "b.jpg", "reason": "the image is truncated"})
    assert capsys.readouterr().err.splitlines() == ["quarantined b.jpg: the image is truncated"]
