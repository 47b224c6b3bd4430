"""Helpers for tests that run `argus serve` roles as real processes with REST and gRPC ports,
and talk to them with gRPC clients."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from argus.generated.v1 import vision_pb2 as v1
from argus.generated.v1 import vision_pb2_grpc
from tests.conftest import ServerProcess, free_port, start_server

#: Fields of an answer that describe how it was made, not what it says.
VOLATILE = ("timings_ms", "steps", "cached")


@dataclass
class Served:
    """A server process and its gRPC address."""

    proc: ServerProcess
    grpc_port: int

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_target(self) -> str:
        return self.proc.url.removeprefix("http://")

    def stop(self) -> None:
        self.proc.stop()


def serve(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    grpc_port: int | None = None,
    wait: bool = True,
) -> Served:
    """`argus serve ARGS` on free ports (or the given gRPC port), ready when this returns."""
    port = grpc_port or free_port()
    proc = start_server(home, "--grpc-port", str(port), *args, env=env)
    served = Served(proc, port)
    if wait:
        try:
            proc.wait_ready(timeout=120)
        except BaseException:
            proc.stop()
            raise
    return served


@contextlib.contextmanager
def triton_http(target: str) -> Iterator[Any]:
    """A tritonclient.http client, closed once. Its ``__del__`` closes it again; when the cyclic
    garbage collector runs that during a later test, gevent raises InvalidThreadUseError and
    pytest fails that later test."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(target)
    try:
        yield client
    finally:
        client.close()
        client.close = lambda: None


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its timings: what two roles must agree on exactly."""
    return {key: value for key, value in answer.items() if key not in VOLATILE}


def vision_stub(target: str) -> tuple[grpc.Channel, vision_pb2_grpc.VisionStub]:
    options = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20),
    ]
    channel = grpc.insecure_channel(target, options=options)
    return channel, vision_pb2_grpc.VisionStub(channel)


def chunks(
    question: str,
    data: bytes,
    size: int = 256 * 1024,
    announce: bool = False,
    sent: list[int] | None = None,
    **options: Any,
) -> Iterator[v1.ImageChunk]:
    """An Ask stream: the header, then the image in ``size`` pieces. ``sent`` collects the
    bytes of every piece the transport took (to see where the server stopped the upload)."""
    header = v1.AskHeader(
        question=question,
        options=v1.AskOptions(**options),
        request_id="r-1",
        total_bytes=len(data) if announce else 0,
    )
    yield v1.ImageChunk(header=header)
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        if sent is not None:
            sent.append(len(piece))
        yield v1.ImageChunk(data=piece)


def answer_of(message: v1.Answer) -> dict[str, Any]:
    if message.HasField("error"):
        raise AssertionError(f"the answer is an error: {message.error}")
    result: dict[str, Any] = json.loads(message.answer_json)
    return result
