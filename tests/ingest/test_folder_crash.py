"""500 files (real photos made small, plus truncated, non-image and empty files) through
`argus ingest --source dir:…`, killed with SIGKILL midway and started again: every good file has
exactly one sidecar and one prediction record, every bad one is in quarantine with its reason."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from argus.settings import Settings
from tests.cli_commands import argus
from tests.ingest.conftest import bad_files, env_for, records_per_image, small_photos


class Ingest:
    """`argus ingest` as a subprocess whose --json-log events are counted as they arrive."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.events: Counter[str] = Counter()
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*argus("ingest"), *args, "--json-log", "--concurrency", "8"],
            env=env_for(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("{"):
                self.events[json.loads(line)["event"]] += 1

    def wait_for(self, event: str, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.events[event] < count:
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise AssertionError("ingest exited early:\n" + "".join(self.lines[-30:]))
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.events} after {timeout}s:\n"
                                     + "".join(self.lines[-30:]))
            time.sleep(0.02)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.reader.join(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.reader.join(10)
        return code


def drop(folder: Path, files: dict[str, bytes]) -> None:
    """Write files the way a well-behaved producer does: a hidden name, then a rename."""
    for name, data in files.items():
        tmp = folder / f".{name}.part"
        tmp.write_bytes(data)
        tmp.rename(folder / name)


@pytest.mark.slow
def test_folder_ingest_survives_a_kill(
    ingest_settings: Settings, photos: dict[str, bytes], tmp_path: Path
) -> None:
    incoming, out = tmp_path / "incoming", tmp_path / "out"
    incoming.mkdir()
    good = dict(small_photos(photos, 441))
    # One file is still being written when the restarted ingest sees it: it must wait.
    slow_name, slow_data = good.popitem()
    bad = bad_files(list(good.items()), 60)
    everything = {**good, **{n: d for n, (d, _) in bad.items()}}
    names = sorted(everything)
    batches = [names[0::3], names[1::3], names[2::3]]  # before, during, while down
    drop(incoming, {n: everything[n] for n in batches[0]})
    args = ["--source", f"dir:{incoming}", "--question", "tiny", "--sink", f"dir:{out}",
            "--settle-seconds", "0.4"]

    first = Ingest(ingest_settings, *args)
    first.wait_for("started", 1)
    drop(incoming, {n: everything[n] for n in batches[1]})
    first.wait_for("done", 150)
    first.kill()
    assert first.events["done"] < len(good) - 50, "the kill came too late to test anything"
    drop(incoming, {n: everything[n] for n in batches[2]})

    second = Ingest(ingest_settings, *args)
    with (incoming / slow_name).open("wb") as fh:
        fh.write(slow_data[:100])
        fh.flush()
        time.sleep(0.3)
        fh.write(slow_data[100:])
    good[slow_name] = slow_data
    expected_done = len(good)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        sidecars = {p.name[: -len(".json")] for p in out.glob("*.json")}
        reasons = set((out / "quarantine").glob("*.reason.txt"))
        if len(sidecars) >= expected_done and len(reasons) >= len(bad):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # anything still (wrongly) running would show up now
    assert second.stop() == 0, "".join(second.lines[-30:])

    # Every good file: one image and one sidecar in the sink, one record.
    sidecars = sorted(p.name[: -len(".json")] for p in out.glob("*.json"))
    assert sidecars == sorted(good)
    for name, data in good.items():
        assert (out / name).read_bytes() == data
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta["file"] == name and meta["question"] == "tiny"
        assert meta["models"][0]["name"] == "tiny" and meta["answer"]["labels"]
    per_digest = records_per_image(ingest_settings, "tiny", out)
    assert set(per_digest) == {hashlib.sha256(d).hexdigest() for d in good.values()}
    assert set(per_digest.values()) == {1}
    # Every bad file: moved to quarantine with the reason beside it.
    quarantine = out / "quarantine"
    for name, (data, why) in bad.items():
        assert (quarantine / name).read_bytes() == data
        assert why in (quarantine / f"{name}.reason.txt").read_text().lower()
        assert not (incoming / name).exists()
    # Files the killed run was writing were swept at restart; nothing half-written is left.
    assert list((out / ".tmp").iterdir()) == []
    # The restart skipped what the killed run had stored, and did not ask again.
    assert second.events["skipped"] >= 150
