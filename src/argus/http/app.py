"""The FastAPI application: questions, health, models. Handlers only convert and delegate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from argus.errors import BadInput, TooLarge
from argus.http import errors
from argus.http.models import router as models_router
from argus.service import AskOptions, Vision, parse_top_k
from argus.settings import Settings

log = logging.getLogger(__name__)

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
    )


def create_app(settings: Settings, vision: Vision | None = None) -> FastAPI:
    owned = vision is None
    core = vision or Vision(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
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
    errors.install(app)
    app.include_router(models_router)

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
        options = options_from(request)
        data = await read_image(request, settings.max_image_bytes)
        return JSONResponse(await core.ask(question, data, options))

    @app.get("/v2/health/live", tags=["health"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"])
    async def ready() -> Response:
        if core.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "error": "models are still loading"}, status_code=503)

    return app
