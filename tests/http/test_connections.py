"""Connections as a real `argus serve` sees them, over raw sockets: a client that goes away
mid-body is counted apart (499) without a traceback, and the server keeps serving."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.graphs.conftest import register_tint
from tests.records.test_records import GREEN
from tests.roles import Served, serve


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("connections")
    register_tint(home)
    served = serve(home)
    try:
        yield served
    finally:
        served.stop()


def connect(served: Served) -> socket.socket:
    host, port = served.rest_target.split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def metric_lines(served: Served, name: str) -> list[str]:
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith(name)]


def test_a_client_that_leaves_mid_body_is_counted_apart_without_a_traceback(
    tiny: Served,
) -> None:
    for _ in range(3):
        with connect(tiny) as sock:
            sock.sendall(
                b"POST /v1/questions/tint HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n" + GREEN[:100]
            )
            time.sleep(0.2)  # the body read has begun
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        counted = [line for line in metric_lines(tiny, "argus_requests_total")
                   if 'question="tint"' in line]
        if any('status="499"' in line and line.endswith(" 3.0") for line in counted):
            break
        time.sleep(0.1)
    assert any('status="499"' in line and line.endswith(" 3.0") for line in counted), counted
    assert not any('status="500"' in line for line in counted), counted
    output = tiny.proc.output()
    assert "Traceback" not in output and "unexpected error" not in output, output
    answer = httpx.post(f"{tiny.url}/v1/questions/tint", content=GREEN, timeout=30)
    assert answer.status_code == 200 and answer.json()["answer"]["labels"][0]["label"] == "green"
