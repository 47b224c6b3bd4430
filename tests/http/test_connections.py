"""Connections as a real `argus serve` sees them, over raw sockets: a client that goes away
mid-body is counted apart (499) without a traceback; connections that stay idle, send their
headers or body too slowly, or idle after a response are closed within their settings; and
the server keeps serving throughout."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.graphs.conftest import register_tint
from tests.records.test_records import GREEN
from tests.roles import Served, serve


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("connections")
    register_tint(home)
    timeouts = {"ARGUS_HEADER_TIMEOUT_S": "1", "ARGUS_BODY_TIMEOUT_S": "2",
                "ARGUS_KEEPALIVE_TIMEOUT_S": "1"}
    served = serve(home, env=timeouts)
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


def closed_by_server(sock: socket.socket, within: float, trickle: bytes = b"") -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (sending ``trickle`` a
    byte every 0.2 s meanwhile, as a slow client would)."""
    deadline = time.monotonic() + within
    sent = 0
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
            continue
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            sent += 1
    return False


REQUEST = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("first", "trickle"),
    [
        (b"", b""),  # connects and says nothing
        (REQUEST, b""),  # half a header, then silence
        (b"", REQUEST + b"X-Slow: " + b"a" * 200),  # slowloris: a header byte at a time
        (b"POST /v1/questions/tint HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
         b"b" * 200),  # a body a byte at a time
    ],
    ids=["idle", "half-header", "slow-header", "slow-body"],
)
def test_slow_and_idle_connections_are_closed_within_their_settings(
    tiny: Served, first: bytes, trickle: bytes
) -> None:
    with connect(tiny) as sock:
        sock.sendall(first)
        assert closed_by_server(sock, within=15, trickle=trickle)
    assert httpx.get(f"{tiny.url}/v2/health/live", timeout=10).status_code == 200


def test_an_idle_keep_alive_connection_is_closed_after_its_setting(tiny: Served) -> None:
    with connect(tiny) as sock:
        for _ in range(2):  # the second request on the connection is timed again
            sock.sendall(REQUEST + b"\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
                reply += sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200")
        # 1 s here; uvicorn's own default (5 s) would not close it within 4
        assert closed_by_server(sock, within=4)
