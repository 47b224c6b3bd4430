"""The people question through a real `argus serve` (REST and gRPC), a job answered by a real
`argus worker`, and `argus ingest`: every path brings the 33 landmarks back."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_commands import argus
from tests.conftest import ServerProcess, copy_home, free_port, start_server, wait_for_job
from tests.roles import answer_of, chunks, comparable, vision_stub


@pytest.fixture(scope="module")
def served(
    pulled_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    """`argus serve` (REST + gRPC on known ports) and an `argus worker` on a copy of the
    pulled home."""
    home = copy_home(pulled_home, tmp_path_factory.mktemp("people") / "home")
    grpc_target = f"127.0.0.1:{free_port()}"
    server = start_server(home, "--grpc-port", grpc_target.rsplit(":", 1)[1])
    worker = subprocess.Popen(
        [*argus("worker"), "--concurrency", "1", "--log-level", "warning"],
        env={**os.environ, "ARGUS_HOME": str(home)},
        stdout=(home / "worker.log").open("ab"), stderr=subprocess.STDOUT,
    )
    try:
        server.wait_ready()
        yield server, grpc_target
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()


def check_astronaut(answer: dict[str, Any]) -> None:
    (person,) = answer["answer"]["people"]
    assert [m["name"] for m in answer["models"]] == ["blazepose"]
    assert len(person["pose"]) == 33
    nose = person["pose"][0]
    assert nose["name"] == "nose" and abs(nose["x"] - 218) < 15 and abs(nose["y"] - 124) < 15
    assert set(nose) == {"name", "x", "y", "z", "visibility", "presence"}


def test_rest_and_grpc_answer_the_same_landmarks(
    served: tuple[ServerProcess, str], photos: dict[str, bytes]
) -> None:
    server, grpc_target = served
    response = httpx.post(
        f"{server.url}/v1/questions/people", content=photos["astronaut"], timeout=60
    )
    assert response.status_code == 200, response.text
    rest = response.json()
    check_astronaut(rest)
    channel, stub = vision_stub(grpc_target)
    with channel:
        reply = stub.Ask(chunks("people", photos["astronaut"]), timeout=60)
    over_grpc = answer_of(reply)
    check_astronaut(over_grpc)
    assert comparable(over_grpc)["answer"] == comparable(rest)["answer"]
    none = httpx.post(f"{server.url}/v1/questions/people", content=photos["china"], timeout=60)
    assert none.status_code == 200 and none.json()["answer"]["people"] == []


def test_a_job_is_answered_with_landmarks(
    served: tuple[ServerProcess, str], photos: dict[str, bytes]
) -> None:
    server, _ = served
    raw = httpx.post(f"{server.url}/v1/jobs", params={"question": "people"},
                     content=photos["astronaut"], timeout=30)
    assert raw.status_code == 202, raw.text
    job_id = raw.json()["id"]
    job = wait_for_job(server.url, job_id, timeout=90)
    assert job["status"] == "done", job
    check_astronaut(job["answer"])


def test_ingest_writes_the_landmarks(
    pulled_home: Path, photos: dict[str, bytes], tmp_path: Path
) -> None:
    home = copy_home(pulled_home, tmp_path / "home")
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    (incoming / "astronaut.jpg").write_bytes(photos["astronaut"])
    (incoming / "china.jpg").write_bytes(photos["china"])
    done = subprocess.run(
        [*argus("ingest"), "--source", f"dir:{incoming}", "--question", "people",
         "--sink", f"dir:{out}", "--once", "--settle-seconds", "0"],
        env={**os.environ, "ARGUS_HOME": str(home)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["done"] == 2
    check_astronaut(json.loads((out / "astronaut.jpg.json").read_text()))
    assert json.loads((out / "china.jpg.json").read_text())["answer"]["people"] == []
