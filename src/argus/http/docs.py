"""The API documentation served by the server itself: Swagger UI's files come from the
``swagger-ui-bundle`` package (Apache-2.0), so ``/docs`` works on a machine with no internet,
where FastAPI's default page loads them from a CDN and stays blank."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from argus.contracts import GALLERY_NAME, MAX_TOP_K, MAX_VERSION, AskOptions
from argus.models.versions import ALIAS_PATTERN, NAME_LENGTH, NAME_PATTERN

ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and its assets from the installed package."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )


class ErrorBody(BaseModel):
    """Every error answers this shape, with the reason."""

    error: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the errors a route can give."""
    return {
        status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]}
        for status in statuses
    }


ERROR_MEANINGS = {
    400: "The request is wrong (a bad option or a damaged image); the reason says which.",
    401: "A token is needed (Authorization: Bearer …).",
    403: "Not allowed: the token does not allow this call, or the callback's host is not "
         "one callbacks may go to.",
    404: "No such question, model, version, alias, app, job, kept image, gallery or person.",
    409: "The request contradicts the current state (e.g. an alias moved meanwhile).",
    413: "The image is over the byte or pixel limit (checked before decoding).",
    415: "The body is not an image Argus reads (JPEG, PNG, WebP, BMP, GIF).",
    422: "A parameter or the JSON body does not have the shape this document gives it.",
    499: "The client closed the connection before its request was read whole: counted, and "
         "never answered.",
    503: "Overloaded, shutting down, or a model is unavailable or refused (the reason says "
         "which): retry after Retry-After seconds.",
}


#: The image API's options as an HTTP query carries them, with the ranges
#: :meth:`AskOptions.parse` holds them to (it answers 400 with the reason outside them).
ASK_QUERY: dict[str, dict[str, Any]] = {
    "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
    "conf": {"type": "number", "minimum": 0, "maximum": 1},
    "crops": {"type": "boolean"},
    "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
    "alias": {"type": "string", "pattern": ALIAS_PATTERN, "maxLength": NAME_LENGTH},
    "app": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_LENGTH},
    "record": {"type": "boolean"},
    "keep_uncertain": {"type": "number", "minimum": 0, "maximum": 1},
    "gallery": {"type": "string", "pattern": GALLERY_NAME.pattern, "maxLength": 100},
}


def query_parameters(
    schemas: dict[str, dict[str, Any]],
    descriptions: dict[str, str],
    required: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """OpenAPI query parameters: name → JSON Schema, with a description each."""
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": schema,
            "description": descriptions.get(name, ""),
        }
        for name, schema in schemas.items()
    ]


def ask_descriptions() -> dict[str, str]:
    return {name: field.description or "" for name, field in AskOptions.model_fields.items()}


def ask_parameters() -> list[dict[str, Any]]:
    """The query parameters of the image API, from :class:`AskOptions` (so "Try it out" can
    set them, and the page says what each does)."""
    return query_parameters(ASK_QUERY, ask_descriptions())
