"""The OpenAPI document, finished once in one place so it is the API this server serves:

* every error answers :class:`~argus.http.docs.ErrorBody` — FastAPI's 422 included, which the
  error handler answers in that shape, not FastAPI's own;
* the tokens this server was started with decide which operations need one: those declare the
  bearer scheme and their 401 (and 403 where an inference token is not enough);
* every operation may answer 503 (a full queue, an unavailable model, or a request the server
  stopped at the end of its shutdown grace).

Routes declare only the errors of their own making (:func:`~argus.http.docs.error_responses`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from argus.auth import Scope, Tokens, http_scope
from argus.http.docs import ERROR_MEANINGS, ErrorBody

BEARER = "bearer"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
#: FastAPI's own validation error shapes, which no response of Argus has.
FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")
METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": ERROR_REF}},
    }


def finish(document: dict[str, Any], tokens: Tokens) -> dict[str, Any]:
    """``document`` (FastAPI's) made true of a server started with ``tokens``."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method in METHODS:
                _finish_operation(operation, http_scope(method, path), tokens)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in FASTAPI_ERRORS:
        schemas.pop(name, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    if tokens.enabled:
        components["securitySchemes"] = {
            BEARER: {
                "type": "http",
                "scheme": "bearer",
                "description": "An admin token (ARGUS_ADMIN_TOKENS), or for inference an "
                "inference token (ARGUS_INFER_TOKENS).",
            }
        }
    return document


def _finish_operation(operation: dict[str, Any], scope: Scope, tokens: Tokens) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = error_response(422)
    if tokens.required(scope):
        operation["security"] = [{BEARER: []}]
        responses["401"] = error_response(401)
        if scope is Scope.ADMIN and tokens.infer:  # an inference token is refused here
            responses.setdefault("403", error_response(403))
    responses.setdefault("503", error_response(503))
    operation["responses"] = dict(sorted(responses.items()))


def install_openapi(app: FastAPI, tokens: Tokens) -> None:
    """Serve the finished document at ``app.openapi_url`` (built at the first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                tokens,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
