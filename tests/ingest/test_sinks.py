"""argus.ingest.sinks, the folder sink: an image and its sidecar written whole, quarantine with
the reason, and the start-up sweep that removes only what dead writers of this host left
half-written. Names that try to leave the sink: tests/ingest/test_ingest_cli.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from argus.errors import ConfigError
from argus.ingest.sinks import DirSink, open_sink


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_an_image_and_its_sidecar_are_written_whole(tmp_path: Path) -> None:
    sink = open_sink(f"dir:{tmp_path / 'out'}")
    assert isinstance(sink, DirSink) and sink.url == f"dir:{(tmp_path / 'out').resolve()}"
    sink.write("day1/cam2/photo.jpg", b"first", {"answer": {"labels": []}, "bytes": 5})
    sink.write("day1/cam2/photo.jpg", b"second", {"bytes": 6, "answer": {"labels": ["x"]}})
    out = tmp_path / "out"
    assert files_under(out) == {"day1/cam2/photo.jpg", "day1/cam2/photo.jpg.json"}
    assert (out / "day1/cam2/photo.jpg").read_bytes() == b"second"  # rewritten, not appended
    text = (out / "day1/cam2/photo.jpg.json").read_text()
    assert json.loads(text) == {"answer": {"labels": ["x"]}, "bytes": 6}
    assert text.index('"answer"') < text.index('"bytes"') and text.endswith("}\n")
    assert list((out / ".tmp").iterdir()) == []


def test_quarantine_keeps_the_input_and_the_reason(tmp_path: Path) -> None:
    sink = DirSink(tmp_path / "out")
    sink.quarantine("sub/cut.jpg", b"\xff\xd8half", "the image is truncated\n\n")
    sink.quarantine("gone.jpg", None, "cannot read the file: Permission denied")
    quarantine = tmp_path / "out" / "quarantine"
    assert files_under(quarantine) == {"sub/cut.jpg", "sub/cut.jpg.reason.txt",
                                       "gone.jpg.reason.txt"}
    assert (quarantine / "sub/cut.jpg").read_bytes() == b"\xff\xd8half"
    assert (quarantine / "sub/cut.jpg.reason.txt").read_text() == "the image is truncated\n"


def test_the_sweep_removes_only_what_dead_writers_of_this_host_left(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = int(ended.stdout)
    host = socket.gethostname()
    sink = DirSink(tmp_path / "out")
    leftovers = {
        f"{host}-{dead}-a1b2": False,  # a dead process of this host: swept
        f"{host}-{os.getpid()}-c3d4": True,  # a live writer (this one): kept
        f"other-host-{dead}-e5f6": True,  # another machine's writer: not ours to judge
        "unrelated-name": True,
    }
    for name in leftovers:
        (sink.tmp / name).write_bytes(b"half")
    sink.check()  # what `argus ingest` runs at start-up
    assert {p.name for p in sink.tmp.iterdir()} == {n for n, kept in leftovers.items() if kept}


@pytest.mark.parametrize(
    ("spec", "words"),
    [("dir:", "unknown sink"), ("s3://", "names no bucket"), ("s3:///prefix", "names no bucket")],
)
def test_sink_specs_that_cannot_work_are_refused(spec: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        open_sink(spec)
