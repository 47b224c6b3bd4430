"""Tokens on gRPC: the ``authorization`` metadata, checked by one server interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from argus.auth import Tokens, bearer, grpc_scope
from argus.errors import ArgusError
from argus.grpc.errors import status_code


def _denial(handler: grpc.RpcMethodHandler, exc: ArgusError) -> grpc.RpcMethodHandler:
    code, message = status_code(exc), exc.message

    async def unary(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)

    async def streaming(
        _request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming)
    return grpc.unary_unary_rpc_method_handler(unary)


class TokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        scope = grpc_scope(handler_call_details.method)
        if handler is None or not self.tokens.required(scope):
            return handler
        presented = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                presented = bearer(value if isinstance(value, str) else value.decode())
        try:
            self.tokens.check(scope, presented)
        except ArgusError as exc:
            return _denial(handler, exc)
        return handler
