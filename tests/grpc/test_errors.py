"""argus.grpc.errors: ArgusError → gRPC status once for every servicer (over a real call:
unexpected errors are INTERNAL naming only their type), and the reverse for the gateway, which
re-raises an upstream's status as its own error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

from argus.errors import (
    ArgusError,
    BadInput,
    BadPackage,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    Overloaded,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
)
from argus.grpc.errors import from_status, handles_errors, status_code
from tests.inprocess import LoopThread

CODES: list[tuple[ArgusError, grpc.StatusCode]] = [
    (BadInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (UnsupportedMedia("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (TooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NotFound("x"), grpc.StatusCode.NOT_FOUND),
    (Conflict("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (BadPackage("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthorized("x"), grpc.StatusCode.UNAUTHENTICATED),
    (Forbidden("x"), grpc.StatusCode.PERMISSION_DENIED),
    (Overloaded("x"), grpc.StatusCode.UNAVAILABLE),
    (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
    (ConfigError("x"), grpc.StatusCode.INTERNAL),
    (ArgusError("x"), grpc.StatusCode.INTERNAL),
]


@pytest.mark.parametrize(("error", "code"), CODES, ids=[type(e).__name__ for e, _ in CODES])
def test_every_argus_error_has_its_status_code(error: ArgusError, code: grpc.StatusCode) -> None:
    assert status_code(error) is code


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, BadInput, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, TooLarge, 413),
        (grpc.StatusCode.NOT_FOUND, NotFound, 404),
        (grpc.StatusCode.FAILED_PRECONDITION, Conflict, 409),
        (grpc.StatusCode.UNAVAILABLE, Unavailable, 503),
    ],
)
def test_an_upstream_status_becomes_the_same_error_at_the_gateway(
    code: grpc.StatusCode, kind: type[ArgusError], status: int
) -> None:
    error = from_status(code, "the upstream's reason", "model service 127.0.0.1:9")
    assert type(error) is kind and error.status == status
    assert error.message == "the upstream's reason"


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED])
def test_a_refused_gateway_token_is_the_gateways_problem_not_the_callers(
    code: grpc.StatusCode,
) -> None:
    error = from_status(code, "the token is not valid", "model service 127.0.0.1:9")
    assert type(error) is Unavailable and error.status == 503
    assert error.message == (
        f"model service 127.0.0.1:9 refused the gateway's token ({code.name}): "
        "the token is not valid"
    )


def test_other_upstream_statuses_are_internal_errors_that_say_where() -> None:
    error = from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "too slow", "model service m:1")
    assert type(error) is ArgusError and error.status == 500
    assert error.message == "model service m:1 failed with DEADLINE_EXCEEDED: too slow"


class Probe:
    """A servicer whose one method raises what the request names."""

    @handles_errors
    async def Fail(self, request: bytes, context: Any) -> bytes:
        if request == b"not-found":
            raise NotFound("no question named 'x'")
        if request == b"too-large":
            raise TooLarge("over the limit")
        if request == b"unexpected":
            raise KeyError("the secret at /srv/keys")
        return b"fine"


@pytest.fixture(scope="module")
def probe(loop: LoopThread) -> Iterator[grpc.Channel]:
    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(Probe().Fail)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("test.Probe", {"Fail": handler})]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = loop.run(start())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        loop.run(server.stop(0))


@pytest.mark.parametrize(
    ("request_", "code", "details"),
    [
        (b"not-found", grpc.StatusCode.NOT_FOUND, "no question named 'x'"),
        (b"too-large", grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit"),
        (b"unexpected", grpc.StatusCode.INTERNAL, "internal error: KeyError"),
    ],
    ids=["not-found", "too-large", "unexpected"],
)
def test_handles_errors_ends_a_call_with_the_status(
    probe: grpc.Channel, request_: bytes, code: grpc.StatusCode, details: str
) -> None:
    fail = probe.unary_unary("/test.Probe/Fail")
    with pytest.raises(grpc.RpcError) as caught:
        fail(request_, timeout=30)
    error: Any = caught.value
    assert (error.code(), error.details()) == (code, details)
    assert fail(b"anything else", timeout=30) == b"fine"
