"""ArgusError → gRPC status, once for every servicer; and the reverse for the gateway's client."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import grpc.aio

from argus.errors import (
    ArgusError,
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)
R = TypeVar("R")


def status_code(exc: ArgusError) -> grpc.StatusCode:
    code: grpc.StatusCode = getattr(grpc.StatusCode, exc.grpc_code, grpc.StatusCode.INTERNAL)
    return code


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: ArgusError) -> NoReturn:
    if exc.status >= 500:
        log.warning("gRPC call failed: %s", exc.message)
    await context.abort(status_code(exc), exc.message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def handles_errors(
    method: Callable[..., Awaitable[R]],
) -> Callable[..., Awaitable[R]]:
    """Turn ArgusError (and anything unexpected) raised by a unary-response RPC into a status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> R:
        try:
            return await method(self, request, context)
        except ArgusError as exc:
            await abort(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            log.exception("unexpected error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
            raise AssertionError("unreachable") from exc  # pragma: no cover

    return wrapper


_FROM_CODE: dict[grpc.StatusCode, type[ArgusError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: BadInput,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooLarge,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def from_status(code: grpc.StatusCode, details: str, where: str) -> ArgusError:
    """The ArgusError an upstream's status stands for (the gateway re-raises it as its own)."""
    kind = _FROM_CODE.get(code)
    if kind is None:
        return ArgusError(f"{where} failed with {code.name}: {details}")
    if kind in (Unauthorized, Forbidden):
        # The caller's token was fine at the gateway: the gateway's own token was refused.
        return Unavailable(f"{where} refused the gateway's token ({code.name}): {details}")
    return kind(details)
