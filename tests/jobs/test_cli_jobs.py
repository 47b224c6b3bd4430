"""`argus jobs …` and `argus worker` as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from argus.settings import Settings
from tests.cli_commands import argus
from tests.jobs.conftest import worker_env
from tests.tiny_model import register_tiny


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argus("jobs"), *args], env=worker_env(settings), capture_output=True, text=True,
        timeout=60,
    )


def test_submit_worker_show_list_cancel(tmp_path: Path, photo_dir: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    register_tiny(settings, tmp_path / "tiny")
    first = run(settings, "submit", "tiny", str(photo_dir / "coffee.jpg"), "--top-k", "1",
                "--json")
    assert first.returncode == 0, first.stderr
    job = json.loads(first.stdout)
    assert job["status"] == "queued" and job["options"] == {"top_k": 1}
    keep = json.loads(run(settings, "submit", "tiny", str(photo_dir / "rocket.jpg"),
                          "--priority", "-5", "--json").stdout)
    cancelled = json.loads(run(settings, "cancel", keep["id"], "--json").stdout)
    assert cancelled["status"] == "cancelled"

    bad = run(settings, "submit", "tiny", str(tmp_path / "missing.jpg"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr
    (tmp_path / "notes.txt").write_text("not an image")
    bad = run(settings, "submit", "tiny", str(tmp_path / "notes.txt"))
    assert bad.returncode == 2 and "not an image" in bad.stderr

    worker = subprocess.Popen(
        [*argus("worker"), "--concurrency", "2", "--log-level", "info"],
        env=worker_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        waited = run(settings, "submit", "tiny", str(photo_dir / "chelsea.jpg"), "--wait",
                     "--json")
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout)["status"] == "done"
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, out
    assert "worker stopped" in out

    shown = json.loads(run(settings, "show", job["id"], "--json").stdout)
    assert shown["status"] == "done" and len(shown["answer"]["answer"]["labels"]) == 1
    listed = json.loads(run(settings, "list", "--status", "done", "--json").stdout)
    assert {j["id"] for j in listed} == {job["id"], json.loads(waited.stdout)["id"]}
    table = run(settings, "list")
    assert "2 done" in table.stdout and "1 cancelled" in table.stdout
    again = run(settings, "cancel", job["id"])
    assert again.returncode == 2 and "only a queued job" in again.stderr
    missing = run(settings, "show", "job_nope")
    assert missing.returncode == 2 and "no job" in missing.stderr
