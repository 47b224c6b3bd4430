"""The FastAPI application: KServe v2, health and metrics always; with a core, also the image
API (``/v1/questions``), the registry (``/v1/models``), jobs, records, review and the web page.
Tokens are checked once in front of them all. Handlers only convert and delegate; which parts
a role serves is decided where the role is built (:mod:`argus.server`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from argus import __version__
from argus.auth import Tokens, bearer, http_scope
from argus.contracts import Answer, AskOptions
from argus.core import Core
from argus.errors import ArgusError, Unauthorized
from argus.http import errors
from argus.http.body import image_body, read_image
from argus.http.docs import ask_parameters, error_responses, install_docs
from argus.http.draining import Drain, DrainMiddleware
from argus.http.galleries import router as galleries_router
from argus.http.galleries import vectors_need_admin
from argus.http.jobs import router as jobs_router
from argus.http.kserve import infer_body_limit
from argus.http.kserve import router as kserve_router
from argus.http.models import apps_router
from argus.http.models import router as models_router
from argus.http.openapi import install_openapi
from argus.http.page import install_page
from argus.http.params import QuestionName
from argus.http.records import router as records_router
from argus.http.review import router as review_router
from argus.http.train import router as train_router
from argus.kserve.dataplane import ModelPlane
from argus.metrics import Metrics

log = logging.getLogger(__name__)

IMAGE_BODY = image_body()


def options_from(request: Request, source: str = "http") -> AskOptions:
    """The options of an image API request: its query, and the app from ``X-Argus-App``."""
    return AskOptions.parse(
        request.query_params, source=source, app=request.headers.get("x-argus-app")
    )


class TokenMiddleware:
    """Checks ``Authorization: Bearer`` against the scope of each call (see ``argus.auth``)
    before any handler runs; answers 401/403 in the common error shape."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.tokens.enabled:
            needed = http_scope(scope["method"], scope["path"])
            if self.tokens.required(needed):
                presented = bearer(Headers(scope=scope).get("authorization"))
                try:
                    self.tokens.check(needed, presented)
                except ArgusError as exc:
                    response = errors.error_response(exc)
                    if isinstance(exc, Unauthorized):
                        response.headers["WWW-Authenticate"] = 'Bearer realm="argus"'
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def answer_question(
    core: Core, metrics: Metrics, question: str, request: Request, max_bytes: int
) -> JSONResponse:
    """The image API's one handler: options, the image, the answer, recorded in metrics."""

    async def answer() -> Answer:
        options = options_from(request)
        vectors_need_admin(core, question, request)
        data = await read_image(request, max_bytes)
        return await core.ask(question, data, options)

    return JSONResponse((await metrics.track_ask("http", question, answer())).to_json())


class AskFastPath:
    """``POST /v1/questions/{question}`` with a raw image body, answered straight from the
    ASGI scope: the same handler code as the documented route below (which still serves
    multipart bodies and the OpenAPI page), minus FastAPI's routing and dependency solving —
    about a third of the event loop's time per request. Tokens are checked before this."""

    PREFIX = "/v1/questions/"

    def __init__(self, app: ASGIApp, core: Core, metrics: Metrics, max_bytes: int) -> None:
        self.app = app
        self.core = core
        self.metrics = metrics
        self.max_bytes = max_bytes

    def _question(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if not path.startswith(self.PREFIX):
            return None
        question = path[len(self.PREFIX):]
        if not question or "/" in question:
            return None
        for name, value in scope["headers"]:
            if name == b"content-type" and value.startswith(b"multipart/"):
                return None
        return question

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        question = self._question(scope)
        if question is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await answer_question(
                self.core, self.metrics, question, request, self.max_bytes
            )
        except Exception as exc:  # the same answer the app's own handlers give
            response = errors.failure_response(exc)
        await response(scope, receive, send)


def create_app(
    plane: ModelPlane,
    metrics: Metrics,
    tokens: Tokens,
    *,
    max_image_bytes: int,
    core: Core | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    refused: Callable[[], list[dict[str, Any]]] | None = None,
    drain: Drain | None = None,
) -> FastAPI:
    """The REST application: KServe v2 over ``plane``, health and ``/metrics``; with ``core``
    the image API, registry, jobs and records too. ``lifespan`` runs around serving (the
    caller's start-up and shutdown). ``refused`` lists the model versions refused at load
    (readiness shows them); ``drain`` answers 503 for requests the server stops without
    answering."""
    app = FastAPI(
        title="Argus",
        version=__version__,
        description="Answers questions about images with versioned ONNX models.",
        lifespan=lifespan,
        docs_url=None,  # served from the installed package by install_docs, not a CDN
        redoc_url=None,
    )
    install_docs(app)
    install_openapi(app, tokens)
    app.state.core = core
    app.state.tokens = tokens
    app.state.plane = plane
    app.state.refused = refused or (core.refused_models if core is not None else list)
    app.state.metrics = metrics
    app.state.infer_body_limit = infer_body_limit(max_image_bytes)
    errors.install(app)
    if core is not None:  # added first, so it runs inside the token check
        app.add_middleware(AskFastPath, core=core, metrics=metrics, max_bytes=max_image_bytes)
    app.add_middleware(TokenMiddleware, tokens=tokens)
    if drain is not None:  # outermost: it sees every request, and whether it has answered
        app.add_middleware(DrainMiddleware, drain=drain)
    app.include_router(kserve_router)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                         "description": "Prometheus text exposition format."}},
    )
    async def prometheus() -> Response:
        """Prometheus metrics of this process."""
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    if core is None:
        return app

    app.include_router(models_router)
    app.include_router(apps_router)
    app.include_router(galleries_router)
    app.include_router(jobs_router)
    app.include_router(records_router)
    app.include_router(train_router)
    app.include_router(review_router)
    install_page(app, tokens)  # the web page at /: it needs the /v1 API above

    @app.get("/v1/questions", tags=["questions"])
    async def list_questions() -> list[dict[str, Any]]:
        """Every question this server answers."""
        return await asyncio.to_thread(core.questions)

    @app.post(
        "/v1/questions/{question}",
        tags=["questions"],
        openapi_extra={**IMAGE_BODY, "parameters": ask_parameters()},
        responses={
            200: {"model": Answer, "description": "The answer, the same on every path."},
            **error_responses(400, 403, 404, 413, 415, 499),
        },
    )
    async def ask(question: QuestionName, request: Request) -> JSONResponse:
        """Ask QUESTION of the image in the body (raw bytes or multipart field ``image``).

        Query: ``top_k``, ``version``, ``alias``, ``app`` (or header ``X-Argus-App``),
        ``crops=true`` (aligned face crops as base64 PNG), ``record=true``,
        ``keep_uncertain`` (keep the image for review under this top score; 0 = not).
        """
        return await answer_question(core, metrics, question, request, max_image_bytes)

    return app
