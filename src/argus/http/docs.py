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

from argus.contracts import AskOptions

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
    403: "The token does not allow this.",
    404: "No such question, model, version, alias, app, job or kept image.",
    409: "The request contradicts the current state (e.g. an alias moved meanwhile).",
    413: "The image is over the byte or pixel limit (checked before decoding).",
    415: "The body is not an image Argus reads (JPEG, PNG, WebP, BMP, GIF).",
    503: "Overloaded or a model is unavailable: retry after Retry-After seconds.",
}


def ask_parameters() -> list[dict[str, Any]]:
    """The query parameters of the image API, from :class:`AskOptions` (so "Try it out" can
    set them, and the page says what each does)."""
    kinds = {"top_k": "integer", "conf": "number", "crops": "boolean", "version": "integer",
             "alias": "string", "app": "string", "record": "boolean", "keep_uncertain": "number"}
    fields = AskOptions.model_fields
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": kind},
            "description": fields[name].description or "",
        }
        for name, kind in kinds.items()
    ]
