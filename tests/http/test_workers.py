"""`argus serve --workers 2`: two processes share the port, both answer, and SIGTERM stops
them all."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import start_server


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
