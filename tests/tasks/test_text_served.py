"""The text question on every path, through real processes: `argus serve` (REST and gRPC) with a
worker beside it (a job), `argus ingest --once` from a folder, and `argus ask --draw`; and a
graph whose text step feeds when:."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.cli_commands import argus
from tests.conftest import ServerProcess, copy_home, serving_with_worker, wait_for_job
from tests.rendered_text import cer, render, samples
from tests.roles import answer_of, chunks, vision_stub

SIGN_LINES = ("EMERGENCY EXIT", "Keep this door closed")


@pytest.fixture(scope="module")
def home(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(pulled_home, tmp_path_factory.mktemp("text") / "home")


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[ServerProcess]:
    with serving_with_worker(home, "warning") as server:
        yield server


def grpc_target(server: ServerProcess) -> str:
    """The gRPC address `start_server` gave the server, from its command line."""
    args = [str(arg) for arg in server.proc.args]  # type: ignore[union-attr]
    return f"127.0.0.1:{args[args.index('--grpc-port') + 1]}"


@pytest.fixture(scope="module")
def sign() -> bytes:
    _, data = render(SIGN_LINES, Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
                     if Path("/usr/share/fonts/truetype/dejavu").is_dir() else None, 32,
                     angle=1.5, noise=6.0, quality=80)
    return data


def rest(server: ServerProcess, question: str, data: bytes, **params: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/questions/{question}", content=data,
                          params=params, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_rest_and_grpc_answer_the_same_lines(
    served: ServerProcess, sign: bytes
) -> None:
    server = served
    answer = rest(server, "text", sign)
    assert answer["models"][0]["name"] == "ppocr"
    lines = answer["answer"]["lines"]
    assert [line["text"] for line in lines] == list(SIGN_LINES)
    assert answer["answer"]["text"] == "\n".join(SIGN_LINES)
    assert all(len(line["box"]) == 4 and len(line["box"][0]) == 2 for line in lines)
    channel, stub = vision_stub(grpc_target(server))
    with channel:
        reply = stub.Ask(chunks("text", sign), timeout=120)
    assert answer_of(reply)["answer"] == answer["answer"]
    # conf is the request's min_score: a bar over every line's score leaves none.
    assert rest(server, "text", sign, conf="1")["answer"] == {"lines": [], "text": ""}
    bad = httpx.post(f"{server.url}/v1/questions/text", content=sign, params={"conf": "2"})
    assert bad.status_code == 400 and "conf must be between 0 and 1" in bad.json()["error"]


def test_a_job_is_answered_by_the_worker(served: ServerProcess, sign: bytes) -> None:
    server = served
    job = httpx.post(f"{server.url}/v1/jobs", params={"question": "text"}, content=sign,
                     timeout=30).json()
    done = wait_for_job(server.url, job["id"])
    assert done["status"] == "done", done
    assert done["answer"]["answer"]["text"] == "\n".join(SIGN_LINES)


def test_a_graph_reads_a_sign_and_gates_on_what_it_says(
    served: ServerProcess, sign: bytes, tmp_path: Path
) -> None:
    server = served
    graph = (
        "question: exit-sign\n"
        "steps:\n"
        "  text: {model: ppocr}\n"
        "  words: {op: crop, from: text, margin: 0.05}\n"
        "  labels: {model: efficientnet-lite0, input: words,"
        " when: 'text.contains(\"exit\") and text.count > 1'}\n"
        "answer: [text, words, labels]\n"
    )
    (tmp_path / "exit-sign.yaml").write_text(graph)
    added = subprocess.run([*argus("questions"), "add", str(tmp_path / "exit-sign.yaml")],
                           env={**os.environ, "ARGUS_HOME": str(server.home)},
                           capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    answer = rest(server, "exit-sign", sign)
    assert answer["steps"]["labels"].get("skipped") is None
    assert answer["answer"]["words"]["count"] == 2  # one crop per line's bounding box
    assert len(answer["answer"]["labels"]["results"]) == 2
    blank = np.full((120, 300, 3), 235, dtype=np.uint8)
    _, other = render(("Keep left",), None, 30)
    for data in (other, png(blank)):
        skipped = rest(server, "exit-sign", data)
        assert skipped["steps"]["labels"]["skipped"], skipped["steps"]


def png(rgb: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_ingest_writes_each_files_text(home: Path, tmp_path: Path) -> None:
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    found = samples(3, seed=9)
    for i, sample in enumerate(found):
        (incoming / f"s{i}.jpg").write_bytes(sample.jpeg)
    proc = subprocess.run(
        [*argus("ingest"), "--source", f"dir:{incoming}", "--question", "text",
         "--sink", f"dir:{out}", "--once", "--settle-seconds", "0"],
        env={**os.environ, "ARGUS_HOME": str(home)}, capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for i, sample in enumerate(found):
        meta = json.loads((out / f"s{i}.jpg.json").read_text())
        assert cer(meta["answer"]["text"], sample.text) <= 0.02


def test_cli_ask_prints_the_lines_and_draws_them(home: Path, sign: bytes, tmp_path: Path) -> None:
    photo = tmp_path / "sign.jpg"
    photo.write_bytes(sign)
    env = {**os.environ, "ARGUS_HOME": str(home), "COLUMNS": "160"}
    out = subprocess.run([*argus("ask"), "text", str(photo), "--draw", str(tmp_path / "d.png")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "EMERGENCY EXIT" in out.stdout and "Keep this door closed" in out.stdout
    drawn = np.asarray(Image.open(tmp_path / "d.png").convert("RGB")).astype(int)
    # The outline of each line is drawn in the text colour (255, 0, 200).
    outline = (np.abs(drawn - (255, 0, 200)).sum(axis=2) < 60).sum()
    assert outline > 100


def test_through_a_gateway_and_a_model_service_the_answer_is_the_same(
    served: ServerProcess, home: Path, sign: bytes
) -> None:
    from tests.roles import serve

    service = serve(home, "--role", "model", "--models", "ppocr")
    try:
        gateway = serve(home, "--role", "gateway", "--upstream",
                        f"ppocr={service.grpc_target}")
        try:
            remote = rest(gateway.proc, "text", sign)
        finally:
            gateway.stop()
    finally:
        service.stop()
    assert remote["answer"] == rest(served, "text", sign)["answer"]
