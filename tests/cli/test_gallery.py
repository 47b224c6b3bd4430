"""``argus gallery …`` and ``argus ask who --gallery``, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ARGUS


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARGUS_HOME": str(home), "COLUMNS": "160"}
    env.pop("ARGUS_DATABASE_URL", None)
    return subprocess.run([ARGUS, *args], env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def pictures(people_photos: dict[str, bytes], tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("obama", "obama2", "biden"):
        out[name] = tmp_path / f"{name}.jpg"
        out[name].write_bytes(people_photos[name])
    return out


def test_create_enrol_ask_forget_as_a_user(home_copy: Path, pictures: dict[str, Path]) -> None:
    assert run(home_copy, "gallery", "create", "staff", "--reason", "front desk").returncode == 0
    enrolled = run(home_copy, "gallery", "enrol", "staff", "Barack Obama", str(pictures["obama2"]))
    assert enrolled.returncode == 0, enrolled.stderr
    assert "1 faces enrolled in staff" in enrolled.stdout
    assert "embedding" in enrolled.stderr and "(1/1)" in enrolled.stderr  # progress
    listed = json.loads(run(home_copy, "gallery", "list", "staff", "--json").stdout)
    assert listed["people"] == [{"name": "Barack Obama", "faces": 1}]

    asked = run(home_copy, "ask", "who", str(pictures["obama"]), str(pictures["biden"]),
                "--gallery", "staff", "--json")
    assert asked.returncode == 0, asked.stderr
    obama, biden = _documents(asked.stdout)
    assert obama["answer"]["faces"][0]["name"] == "Barack Obama"
    assert [f["name"] for f in biden["answer"]["faces"]] == [None]
    table = run(home_copy, "ask", "who", str(pictures["biden"]), "--gallery", "staff")
    assert "unknown" in table.stdout

    forgot = run(home_copy, "gallery", "forget", "staff", "Barack Obama", "--reason", "asked")
    assert forgot.returncode == 0 and "1 faces removed" in forgot.stdout
    again = _documents(run(home_copy, "ask", "who", str(pictures["obama"]), "--gallery",
                           "staff", "--json").stdout)
    assert again[0]["answer"]["faces"][0]["name"] is None
    trail = json.loads(run(home_copy, "gallery", "history", "staff", "--json").stdout)
    assert [e["action"] for e in trail] == ["forget", "enrol", "create"]
    assert trail[0]["detail"]["reason"] == "asked" and trail[0]["actor"].startswith("cli")


def test_mistakes_exit_2_with_the_reason(home_copy: Path, pictures: dict[str, Path]) -> None:
    missing = run(home_copy, "gallery", "enrol", "nobody", "x", str(pictures["obama"]))
    assert missing.returncode != 0 and "no gallery named 'nobody'" in missing.stderr
    no_gallery = run(home_copy, "ask", "who", str(pictures["obama"]))
    assert no_gallery.returncode == 2 and "gallery=NAME" in no_gallery.stderr
    forget = run(home_copy, "gallery", "forget", "nobody", "x")
    assert forget.returncode != 0 and "no gallery" in forget.stderr


def _documents(text: str) -> list[dict[str, object]]:
    decoder = json.JSONDecoder()
    docs, at = [], 0
    text = text.strip()
    while at < len(text):
        doc, end = decoder.raw_decode(text, at)
        docs.append(doc)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return docs


def test_ingest_names_faces_with_a_gallery(home_copy: Path, pictures: dict[str, Path],
                                           tmp_path: Path) -> None:
    assert run(home_copy, "gallery", "create", "staff").returncode == 0
    assert run(home_copy, "gallery", "enrol", "staff", "Barack Obama",
               str(pictures["obama2"])).returncode == 0
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for name in ("obama", "biden"):
        (incoming / f"{name}.jpg").write_bytes(pictures[name].read_bytes())
    done = run(home_copy, "ingest", "--source", f"dir:{incoming}", "--question", "who",
               "--sink", f"dir:{tmp_path / 'out'}", "--gallery", "staff", "--once")
    assert done.returncode == 0, done.stderr
    obama = json.loads((tmp_path / "out" / "obama.jpg.json").read_text())
    biden = json.loads((tmp_path / "out" / "biden.jpg.json").read_text())
    assert "Barack Obama" in json.dumps(obama) and "Barack Obama" not in json.dumps(biden)
