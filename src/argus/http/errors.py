"""Map ArgusError (and framework errors) to the common ``{"error": reason}`` shape, once."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import Scope

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


#: The methods probed for :func:`allowed_methods` (OPTIONS is answered by the error handler).
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, and OPTIONS (answered here).
    Starlette's own 405 names only the first route that matched the path, though a path is
    often served by several (GET and DELETE of one resource are two routes). Each method is
    probed with the router's own matching, which sees into included routers."""
    methods = {"OPTIONS"}
    for method in METHODS:
        probe: Scope = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            methods.add(method)
    return sorted(methods)


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
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            if request.method == "OPTIONS":  # what OPTIONS is for: the methods, no body
                return Response(status_code=204, headers=headers)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return failure_response(exc)
