"""`argus serve` as a process: flags refused with a sentence; SIGTERM stops accepting,
finishes the requests in flight (REST and gRPC, within --grace) and exits; with --workers 2,
two processes share the port, both answer, and SIGTERM stops them all."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from argus.generated.v1 import vision_pb2 as v1
from tests.conftest import ARGUS, start_server
from tests.roles import Served, answer_of, serve, vision_stub


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--role", "model"], "--role model needs --models"),
        (["--role", "gateway"], "--role gateway needs at least one --upstream"),
        (["--role", "gateway", "--upstream", "labels"], "must look like MODEL=HOST:PORT"),
        (["--role", "all", "--models", "mtcnn"], "--models is for --role model"),
        (["--role", "worker"], "--role must be all, model or gateway"),
        (["--role", "model", "--models", "nope", "--grpc-port", "0"], "cannot serve model 'nope'"),
    ],
)
def test_bad_flags_are_refused_with_a_sentence(tmp_path: Path, args: list[str], words: str
                                               ) -> None:
    env = {**os.environ, "ARGUS_HOME": str(tmp_path)}
    result = subprocess.run([ARGUS, "serve", "--port", "0", *args], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert words in " ".join(result.stderr.split()), result.stderr


@pytest.fixture
def fresh(pulled_home: Path) -> Iterator[Served]:
    served = serve(pulled_home, "--grace", "8")
    try:
        yield served
    finally:
        served.stop()


def slow_chunks(data: bytes, pieces: int, pause: float, started: threading.Event
                ) -> Iterator[v1.ImageChunk]:
    yield v1.ImageChunk(header=v1.AskHeader(question="labels", request_id="slow"))
    size = len(data) // pieces + 1
    for index in range(pieces):
        if index == 1:
            started.set()
        time.sleep(pause)
        yield v1.ImageChunk(data=data[index * size : (index + 1) * size])


def slow_body(data: bytes, pieces: int, pause: float, started: threading.Event
              ) -> Iterator[bytes]:
    size = len(data) // pieces + 1
    for index in range(pieces):
        if index == 1:
            started.set()
        time.sleep(pause)
        yield data[index * size : (index + 1) * size]


def test_sigterm_finishes_requests_in_flight_then_exits(
    fresh: Served, photos: dict[str, bytes]
) -> None:
    results: dict[str, Any] = {}
    rest_started, grpc_started = threading.Event(), threading.Event()

    def rest() -> None:
        body = slow_body(photos["coffee"], 6, 0.4, rest_started)
        results["rest"] = httpx.post(f"{fresh.url}/v1/questions/labels", content=body, timeout=60)

    def rpc() -> None:
        channel, stub = vision_stub(fresh.grpc_target)
        with channel:
            stream = slow_chunks(photos["chelsea"], 6, 0.4, grpc_started)
            results["grpc"] = stub.Ask(stream, timeout=60)

    threads = [threading.Thread(target=rest), threading.Thread(target=rpc)]
    for thread in threads:
        thread.start()
    assert rest_started.wait(10) and grpc_started.wait(10)
    stopped_at = time.monotonic()
    fresh.proc.proc.send_signal(signal.SIGTERM)

    time.sleep(0.5)  # new connections are refused while the old ones finish
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fresh.url}/v2/health/live", timeout=5)

    for thread in threads:
        thread.join(30)
    assert results["rest"].status_code == 200, results["rest"].text
    assert results["rest"].json()["answer"]["labels"][0]["label"] == "espresso"
    assert answer_of(results["grpc"])["answer"]["labels"]
    assert fresh.proc.proc.wait(20) == 0
    assert time.monotonic() - stopped_at < 15


def test_grace_bounds_how_long_a_request_may_hold_the_exit(
    pulled_home: Path, photos: dict[str, bytes]
) -> None:
    served = serve(pulled_home, "--grace", "1")
    started = threading.Event()
    errors: list[Any] = []

    def endless() -> None:
        channel, stub = vision_stub(served.grpc_target)
        with channel:
            try:
                stub.Ask(slow_chunks(photos["coffee"], 40, 0.5, started), timeout=60)
            except grpc.RpcError as exc:
                errors.append(exc)

    thread = threading.Thread(target=endless)
    try:
        thread.start()
        assert started.wait(10)
        stopped_at = time.monotonic()
        served.proc.proc.send_signal(signal.SIGTERM)
        assert served.proc.proc.wait(15) == 0
        assert time.monotonic() - stopped_at < 6  # ~1 s of grace, not the 20 s upload
        thread.join(30)
        assert errors and errors[0].code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.ABORTED
        )
    finally:
        served.stop()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def test_two_workers_share_the_port_and_stop_together(pulled_home: Path,
                                                      photos: dict[str, bytes]) -> None:
    server = start_server(pulled_home, "--workers", "2")
    try:
        server.wait_ready()
        workers = _children(server.proc.pid)
        assert len(workers) >= 2  # two servers (plus multiprocessing's resource tracker)

        def ask(i: int) -> tuple[int, str]:
            with httpx.Client(timeout=60) as client:  # a connection of its own each time
                r = client.post(f"{server.url}/v1/questions/labels",
                                content=photos["coffee"] + f"#{i}".encode())
                return r.status_code, r.json()["answer"]["labels"][0]["label"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(ask, range(40)))
        assert results == [(200, "espresso")] * 40
        metrics = [httpx.get(f"{server.url}/metrics", timeout=10).text for _ in range(12)]
        assert all("argus_" in m for m in metrics)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(60)
        server.stop()
    assert code == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(p) for p in workers):
        time.sleep(0.1)
    assert [p for p in workers if _running(p)] == []


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_tampered_package_is_refused_and_the_others_serve(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    from argus.db.engine import make_engine, migrate
    from argus.models.packages import PackageStore
    from argus.models.registry import ModelRegistry
    from argus.settings import Settings
    from tests.graphs.conftest import register_classifier

    settings = Settings(home=tmp_path)
    engine = make_engine(settings.db_url)
    migrate(engine)
    registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
    tampered = register_classifier(registry, "tint")
    register_classifier(registry, "heavy", build="heavy")
    engine.dispose()
    (tampered.path / "labels.txt").write_text("red\ngreen\nevil\n")

    served = serve(tmp_path)
    try:
        ready = httpx.get(f"{served.url}/v2/health/ready", timeout=10)
        assert ready.status_code == 200
        [refused] = ready.json()["refused"]
        assert (refused["model"], refused["version"]) == ("tint", 1)
        assert "file labels.txt was modified" in refused["reason"]
        good = httpx.post(f"{served.url}/v1/questions/heavy", content=photos["astronaut"],
                          timeout=30)
        assert good.status_code == 200, good.text
        bad = httpx.post(f"{served.url}/v1/questions/tint", content=photos["astronaut"],
                         timeout=30)
        assert bad.status_code == 503 and bad.json()["error"] == refused["reason"]
        assert "model tint version 1 is refused: package" in served.proc.output()
    finally:
        served.stop()


def test_requests_left_at_the_end_of_the_grace_get_503_with_retry_after(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    """Issue 14: SIGTERM under load answered 500 (with a traceback each) for the requests
    still running when the grace ran out. Each client holds its own connection, opened
    before the signal (a connection the server has not accepted yet would be refused)."""
    from argus.db.engine import make_engine, migrate
    from argus.models.packages import PackageStore
    from argus.models.registry import ModelRegistry
    from argus.settings import Settings
    from tests.graphs.conftest import register_classifier

    settings = Settings(home=tmp_path)
    engine = make_engine(settings.db_url)
    migrate(engine)
    register_classifier(ModelRegistry(engine, PackageStore(settings.packages_dir)), "heavy",
                        build="heavy", side=320)  # about a second of CPU per image
    engine.dispose()
    served = serve(tmp_path, "--grace", "1", "--workers", "2",
                   env={"ARGUS_MAX_BATCH_SIZE": "1"})
    count = 40
    sent = threading.Barrier(count + 1)

    def ask(_: int) -> httpx.Response:
        with httpx.Client(base_url=served.url, timeout=60) as client:
            url = "/v1/questions/heavy"
            assert client.get("/v2/health/live").status_code == 200  # connected
            sent.wait(30)
            return client.post(url, content=photos["astronaut"])

    try:
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(ask, i) for i in range(count)]
            sent.wait(120)
            # Once a few answers are back, every request has arrived (they were sent together;
            # on a loaded machine a thread may take a while to send, so not after the first)
            # and most wait for a lane: now stop. A request still in its socket when draining
            # starts would find its connection closed, as on any HTTP server.
            deadline = time.monotonic() + 120
            while sum(f.done() for f in futures) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            served.proc.proc.send_signal(signal.SIGTERM)
            refused = False
            while not refused and not all(f.done() for f in futures):  # while draining
                try:
                    httpx.get(f"{served.url}/v2/health/live", timeout=5)
                    time.sleep(0.05)
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                    # No new connections: refused, or (one the kernel had queued as the
                    # listener closed) closed or reset without an answer.
                    refused = True
            answers = [f.result() for f in futures]
            assert refused
        assert served.proc.proc.wait(30) == 0
        statuses = sorted(r.status_code for r in answers)
        assert set(statuses) <= {200, 503} and 503 in statuses, statuses
        for refused in (r for r in answers if r.status_code == 503):
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "the server is shutting down; retry the request"
        output = served.proc.output()
        assert "Traceback" not in output and "Exception in ASGI" not in output, output
    finally:
        served.stop()


def test_grpc_listens_next_to_the_rest_port_unless_told() -> None:
    from argus.server import ServeOptions

    assert ServeOptions(port=8000).default_grpc_port() == 8001
    assert ServeOptions(port=9300).default_grpc_port() == 9301  # make run PORT=9300
    assert ServeOptions(port=0).default_grpc_port() == 0  # any free REST port: no guess


def test_a_local_core_loads_no_transport(tmp_path: Path) -> None:
    """``argus ask``, jobs, worker and ingest build a local core: the web, gRPC and metrics
    stacks are the serving roles' to load (a fresh interpreter: this one has them all)."""
    code = (
        "import json, sys\n"
        "from argus.server import local_core\n"
        "from argus.settings import Settings\n"
        f"local_core(Settings(home={str(tmp_path)!r})).engine.dispose()\n"
        "print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert {"onnxruntime", "sqlalchemy"} <= modules  # the core's models run in this process
    assert modules.isdisjoint({"fastapi", "uvicorn", "grpc", "prometheus_client"}), modules
