"""Map ArgusError (and framework errors) to the common ``{"error": reason}`` shape, once."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from argus.errors import ArgusError, ClientClosed, Overloaded

log = logging.getLogger(__name__)


def error_response(exc: ArgusError) -> JSONResponse:
    headers = {}
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


def failure_response(exc: Exception) -> JSONResponse:
    """The answer to a request that raised: ArgusError in the common shape (server-side ones
    logged), anything else a logged 500 that names only the exception's type."""
    if isinstance(exc, ClientDisconnect):  # read outside read_body: still no error
        exc = ClientClosed("the client closed the connection")
    if isinstance(exc, ArgusError):
        if exc.status >= 500 and not isinstance(exc, Overloaded):
            log.error("request failed: %s", exc.message)
        return error_response(exc)
    log.error("unexpected error", exc_info=exc)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


def install(app: FastAPI) -> None:
    @app.exception_handler(ArgusError)
    async def _argus(_req: Request, exc: ArgusError) -> JSONResponse:
        return failure_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return failure_response(exc)
