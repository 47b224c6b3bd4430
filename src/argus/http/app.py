"""The FastAPI application: questions, models, KServe v2, health, metrics; tokens checked once
in front of them all. Handlers only convert and delegate.

What a role serves over REST:

* ``all`` (all-in-one) and ``gateway``: the image API (``/v1/questions``), the registry
  (``/v1/models``), KServe v2, health and ``/metrics``;
* ``model``: KServe v2, health and ``/metrics`` (its callers are gateways, over gRPC).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from argus.auth import Tokens, bearer, http_scope
from argus.errors import ArgusError, BadInput, TooLarge, Unauthorized
from argus.http import errors
from argus.http.jobs import router as jobs_router
from argus.http.kserve import infer_body_limit
from argus.http.kserve import router as kserve_router
from argus.http.models import router as models_router
from argus.http.records import router as records_router
from argus.kserve.dataplane import LocalPlane, ModelPlane
from argus.metrics import Metrics
from argus.service import AskOptions, Vision, parse_top_k
from argus.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("all", "model", "gateway")

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                    "required": ["image"],
                }
            },
        },
    }
}


async def read_image(request: Request, max_bytes: int) -> bytes:
    """The image from a raw body or a multipart ``image`` field, never more than the limit."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise TooLarge(
            f"the request is {int(length):,} bytes, over the image limit of {max_bytes:,} bytes"
        )
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20, max_part_size=max_bytes + 1)
        part = form.get("image")
        if part is None or isinstance(part, str):
            raise BadInput("the multipart form needs a file field named 'image'")
        data = await part.read()
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"the image is over the limit of {max_bytes:,} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    return data


def options_from(request: Request, source: str = "http") -> AskOptions:
    q = request.query_params
    version = q.get("version")
    if version is not None and not version.isdigit():
        raise BadInput(f"version must be a whole number, not {version!r}")
    return AskOptions(
        top_k=parse_top_k(q.get("top_k")),
        app=request.headers.get("x-argus-app") or q.get("app"),
        version=int(version) if version else None,
        alias=q.get("alias"),
        crops=q.get("crops", "").lower() in ("1", "true", "yes"),
        record=q.get("record", "").lower() in ("1", "true", "yes"),
        source=source,
        extra={"conf": parse_conf(q["conf"])} if q.get("conf") else {},
    )


def parse_conf(value: str) -> float:
    try:
        conf = float(value)
    except ValueError as exc:
        raise BadInput(f"conf must be a number between 0 and 1, not {value!r}") from exc
    if not 0.0 <= conf <= 1.0:
        raise BadInput(f"conf must be between 0 and 1, not {conf}")
    return conf


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
    core: Vision, metrics: Metrics, question: str, request: Request, max_bytes: int
) -> JSONResponse:
    """The image API's one handler: options, the image, the answer, recorded in metrics."""

    async def answer() -> dict[str, Any]:
        options = options_from(request)
        data = await read_image(request, max_bytes)
        return await core.ask(question, data, options)

    return JSONResponse(await metrics.track_ask("http", question, answer()))


class AskFastPath:
    """``POST /v1/questions/{question}`` with a raw image body, answered straight from the
    ASGI scope: the same handler code as the documented route below (which still serves
    multipart bodies and the OpenAPI page), minus FastAPI's routing and dependency solving —
    about a third of the event loop's time per request. Tokens are checked before this."""

    PREFIX = "/v1/questions/"

    def __init__(self, app: ASGIApp, core: Vision, metrics: Metrics, max_bytes: int) -> None:
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
    settings: Settings,
    vision: Vision | None = None,
    *,
    plane: ModelPlane | None = None,
    metrics: Metrics | None = None,
    tokens: Tokens | None = None,
    role: str = "all",
    manage: bool = True,
) -> FastAPI:
    """The REST application of a role.

    With ``manage`` (the default) the app's lifespan loads the models (``settings.preload``)
    and closes a core it created; ``argus serve`` passes ``manage=False`` because it runs the
    core for REST and gRPC together.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    owned = vision is None
    core = vision or Vision(settings)
    model_plane: ModelPlane = plane or LocalPlane(core)
    if metrics is None:
        metrics = Metrics()
        metrics.watch(lambda: core.host, model_plane.ready)
    tokens = tokens or Tokens.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not manage:
            yield
            return
        task = asyncio.create_task(core.preload()) if settings.preload else None
        if task is None:
            core.ready = True
        try:
            yield
        finally:
            if task is not None and not task.done():
                task.cancel()
            if owned:
                await core.close()

    app = FastAPI(
        title="Argus",
        version="0.1.0",
        description="Answers questions about images with versioned ONNX models.",
        lifespan=lifespan,
    )
    app.state.vision = core
    app.state.plane = model_plane
    app.state.metrics = metrics
    app.state.infer_body_limit = infer_body_limit(settings.max_image_bytes)
    app.state.role = role
    errors.install(app)
    if role != "model":  # added first, so it runs inside the token check
        app.add_middleware(
            AskFastPath, core=core, metrics=metrics, max_bytes=settings.max_image_bytes
        )
    app.add_middleware(TokenMiddleware, tokens=tokens)
    app.include_router(kserve_router)

    @app.get("/metrics", tags=["health"])
    async def prometheus() -> Response:
        """Prometheus metrics of this process."""
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    if role == "model":
        return app

    app.include_router(models_router)
    app.include_router(jobs_router)
    app.include_router(records_router)

    @app.get("/v1/questions", tags=["questions"])
    async def list_questions() -> list[dict[str, Any]]:
        """Every question this server answers."""
        return await asyncio.to_thread(core.questions)

    @app.post("/v1/questions/{question}", tags=["questions"], openapi_extra=IMAGE_BODY)
    async def ask(question: str, request: Request) -> JSONResponse:
        """Ask QUESTION of the image in the body (raw bytes or multipart field ``image``).

        Query: ``top_k``, ``version``, ``alias``, ``app`` (or header ``X-Argus-App``),
        ``crops=true`` (aligned face crops as base64 PNG), ``record=true``.
        """
        return await answer_question(core, metrics, question, request, settings.max_image_bytes)

    return app
