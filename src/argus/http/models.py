"""``/v1/models…`` and ``/v1/apps…``: the registry over REST. Every version number goes
through :func:`argus.models.versions.check_version` (400 with the reason when it is not a
whole number from 1 to 2**31-1), whether it came in the path or a body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field

from argus.contracts import MAX_VERSION
from argus.core import Core
from argus.errors import NotFound
from argus.http.docs import error_responses
from argus.models.registry import PRODUCTION, ModelRegistry, check_version

T = TypeVar("T")
router = APIRouter(
    prefix="/v1/models", tags=["models"], responses=error_responses(400, 401, 403, 404, 409, 503)
)
apps_router = APIRouter(
    prefix="/v1/apps", tags=["apps"], responses=error_responses(400, 401, 403, 404, 409, 503)
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed name or number (the reason is in `error`)."},
    404: {"description": "No such model, version, alias or app."},
    409: {"description": "The change cannot happen as asked (the reason is in `error`)."},
}


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.core.registry


MAX_REASON = 500
REASON_HELP = "Why (kept in the audit event, shown by history)."


def _why(reason: str | None) -> dict[str, Any] | None:
    """The audit detail of a change made for ``reason``."""
    reason = (reason or "").strip()
    return {"reason": reason} if reason else None


class Change(BaseModel):
    reason: str | None = Field(None, max_length=MAX_REASON, description=REASON_HELP)


# Bodies declare the range for the schema; the registry checks it again (one check for all).
class AliasMove(Change):
    version: int = Field(..., ge=1, le=MAX_VERSION)
    expected_revision: int | None = Field(None, ge=0, le=MAX_VERSION)


class Promote(Change):
    version: int = Field(..., ge=1, le=MAX_VERSION)
    to: str = PRODUCTION


class Rollback(Change):
    alias: str = PRODUCTION


class Canary(Change):
    version: int = Field(..., ge=1, le=MAX_VERSION)
    percent: int = Field(10, ge=0, le=100)


class Pin(Change):
    version: int | None = Field(None, ge=1, le=MAX_VERSION)
    alias: str | None = None


REASON = Query(None, max_length=MAX_REASON, description=REASON_HELP)


async def _change(request: Request, work: Callable[[], T]) -> T:
    """Run a registry change off the event loop, then drop this process's cached
    resolutions at once, so the next request here already sees it (other processes see the
    generation move within a second)."""
    core: Core = request.app.state.core

    def run() -> T:
        result = work()
        core.resolutions.refresh(force=True)
        return result

    return await asyncio.to_thread(run)


def _actor(request: Request) -> str:
    return f"http:{request.client.host if request.client else '?'}"


def _graph_refs(request: Request) -> dict[str, list[tuple[str, int | None]]]:
    core: Core = request.app.state.core
    return core.model_refs()


@router.get("", responses=_ERRORS)
async def list_models(request: Request) -> list[dict[str, Any]]:
    return [m.to_dict() for m in await asyncio.to_thread(_registry(request).list_models)]


@router.get("/{name}", responses=_ERRORS)
async def show_model(name: str, request: Request) -> dict[str, Any]:
    return (await asyncio.to_thread(_registry(request).show, name)).to_dict()


@router.get("/{name}/versions", responses=_ERRORS)
async def versions(name: str, request: Request) -> list[dict[str, Any]]:
    info = await asyncio.to_thread(_registry(request).show, name)
    return [v.to_dict() for v in info.versions]


@router.get("/{name}/versions/{version}", responses=_ERRORS)
async def version(name: str, version: int, request: Request) -> dict[str, Any]:
    """The version, its lineage (``source``) and, for a trained version, its training report
    (held-out scores, confusion matrix, threshold, mistakes; pictures under ``pictures/``)."""
    number = check_version(version)
    info = await asyncio.to_thread(_registry(request).resolve, name, number)
    body = info.to_dict()
    report = info.path / "report.json"
    if report.is_file():
        body["report"] = json.loads(await asyncio.to_thread(report.read_text))
        body["pictures"] = sorted(
            f"/v1/models/{name}/versions/{number}/pictures/{p.name}"
            for p in info.path.glob("*.png")
        )
    return body


@router.get(
    "/{name}/versions/{version}/pictures/{picture}",
    responses={**_ERRORS, 200: {"content": {"image/png": {}}}},
    response_class=Response,
)
async def picture(name: str, version: int, picture: str, request: Request) -> Response:
    """A picture of a trained version's report (``confusion.png``, ``curves.png``)."""
    info = await asyncio.to_thread(_registry(request).resolve, name, check_version(version))
    path = info.path / picture
    if "/" in picture or not picture.endswith(".png") or not path.is_file():
        raise NotFound(f"{name}:{version} has no picture {picture!r}")
    return Response(await asyncio.to_thread(path.read_bytes), media_type="image/png")


@router.get("/{name}/aliases", responses=_ERRORS)
async def aliases(name: str, request: Request) -> dict[str, int]:
    return (await asyncio.to_thread(_registry(request).show, name)).aliases


@router.put("/{name}/aliases/{alias}", responses=_ERRORS)
async def move_alias(name: str, alias: str, body: AliasMove, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await _change(
        request,
        lambda: reg.set_alias(
            name,
            alias,
            body.version,
            actor=_actor(request),
            expected_revision=body.expected_revision,
            detail=_why(body.reason),
        )
    )
    return v.to_dict()


@router.delete("/{name}/aliases/{alias}", status_code=204, responses=_ERRORS)
async def delete_alias(name: str, alias: str, request: Request) -> None:
    """Remove an alias (409 while an app is pinned to it); ``rollback`` brings it back."""
    reg = _registry(request)
    await _change(request, lambda: reg.delete_alias(name, alias, _actor(request)))


@router.post("/{name}/promote", responses=_ERRORS)
async def promote(name: str, body: Promote, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await _change(
        request,
        lambda: reg.promote(name, body.version, body.to, _actor(request), _why(body.reason)),
    )
    return v.to_dict()


@router.post("/{name}/rollback", responses=_ERRORS)
async def rollback(
    name: str, request: Request, body: Rollback | None = Body(None)
) -> dict[str, Any]:
    """Move an alias (``production`` without a body) back to where it was before its last
    move."""
    reg = _registry(request)
    alias = body.alias if body is not None else PRODUCTION
    why = _why(body.reason if body is not None else None)
    return (
        await _change(request, lambda: reg.rollback(name, alias, _actor(request), why))
    ).to_dict()


@router.post("/{name}/canary", responses=_ERRORS)
async def canary(name: str, body: Canary, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await _change(
        request,
        lambda: reg.canary(name, body.version, body.percent, _actor(request), _why(body.reason)),
    )
    return v.to_dict()


@router.delete("/{name}/canary", status_code=204, responses=_ERRORS)
async def end_canary(name: str, request: Request, reason: str | None = REASON) -> None:
    """End the canary: production takes all un-pinned traffic again."""
    reg = _registry(request)
    await _change(request, lambda: reg.end_canary(name, _actor(request), _why(reason)))


@router.get("/{name}/history", responses=_ERRORS)
async def history(name: str, request: Request) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_registry(request).history, name)


@router.delete("/{name}/versions/{version}", status_code=204, responses=_ERRORS)
async def delete_version(name: str, version: int, request: Request) -> None:
    """Remove a version (409 while an alias, an app pin or a question needs it)."""
    number = check_version(version)
    reg = _registry(request)
    refs = await asyncio.to_thread(_graph_refs, request)
    await _change(request, lambda: reg.delete_version(name, number, _actor(request), refs))


@apps_router.get("", responses=_ERRORS)
async def list_apps(request: Request) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_registry(request).app_pins.list)


@apps_router.post("/{app}", status_code=201, responses=_ERRORS)
async def add_app(app: str, request: Request) -> dict[str, Any]:
    pins = _registry(request).app_pins
    await _change(request, lambda: pins.add(app, _actor(request)))
    return await asyncio.to_thread(pins.show, app)


@apps_router.get("/{app}", responses=_ERRORS)
async def show_app(app: str, request: Request) -> dict[str, Any]:
    """An app's pins and its history."""
    return await asyncio.to_thread(_registry(request).app_pins.show, app)


@apps_router.delete("/{app}", status_code=204, responses=_ERRORS)
async def remove_app(app: str, request: Request) -> None:
    pins = _registry(request).app_pins
    await _change(request, lambda: pins.remove(app, _actor(request)))


@apps_router.put("/{app}/pins/{model}", responses=_ERRORS)
async def pin(app: str, model: str, body: Pin, request: Request) -> dict[str, Any]:
    """Pin the app to a version (``{"version": 3}``) or an alias (``{"alias": "stable"}``)."""
    pins = _registry(request).app_pins
    return await _change(
        request,
        lambda: pins.pin(app, model, body.version, body.alias, _actor(request), _why(body.reason)),
    )


@apps_router.delete("/{app}/pins/{model}", status_code=204, responses=_ERRORS)
async def unpin(app: str, model: str, request: Request, reason: str | None = REASON) -> None:
    pins = _registry(request).app_pins
    await _change(request, lambda: pins.unpin(app, model, _actor(request), _why(reason)))
