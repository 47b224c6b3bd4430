"""The web page at ``/`` (its files from :mod:`argus.web`, open like health: a browser fetches
them before it can send a token) and ``GET /v1/whoami``, which says what the presented token
may do, so the page shows only the controls that will work."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from argus import __version__
from argus.auth import Scope, TokenKind, Tokens, bearer
from argus.web import STATIC

ASSETS = "/ui"
#: Only the page's own files and the API on this origin; images drawn from blobs and data URLs.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


class Whoami(BaseModel):
    """What the request's ``Authorization: Bearer`` token may do on this server."""

    token: TokenKind
    """The token given: an admin or inference token, one this server does not know, or none."""
    ask: bool
    """May ask questions, submit and read its jobs, read models and apps."""
    manage: bool
    """May change models, aliases and apps, train, review kept images and read records."""
    tokens_required: bool
    """This server checks tokens (some calls need one)."""
    version: str
    """The server's version."""


def install_page(app: FastAPI, tokens: Tokens) -> None:
    """Serve the page at ``/``, its files under ``/ui/`` and ``GET /v1/whoami``."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="page")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                     "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/v1/whoami", tags=["page"], response_model=Whoami)
    async def whoami(request: Request) -> Whoami:
        """What the presented token may do (no token needed to ask): the web page hides the
        controls it cannot use."""
        presented = bearer(request.headers.get("authorization"))
        return Whoami(
            token=tokens.kind(presented),
            ask=tokens.allows(Scope.INFER, presented),
            manage=tokens.allows(Scope.ADMIN, presented),
            tokens_required=tokens.enabled,
            version=__version__,
        )
