"""``/v1/models…`` and ``/v1/apps…``: the registry over REST. Names and numbers in the path
and bodies are typed (:mod:`argus.http.params`), so the schema in the OpenAPI document is what
is accepted; the registry checks them again (one check for every transport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import Field

from argus.core import Core
from argus.errors import NotFound
from argus.http.docs import error_responses
from argus.http.params import (
    AliasField,
    AliasName,
    AppName,
    ModelName,
    PercentField,
    RevisionField,
    StrictBody,
    VersionField,
    VersionNumber,
)
from argus.models.registry import PRODUCTION, ModelRegistry

T = TypeVar("T")
router = APIRouter(prefix="/v1/models", tags=["models"])
apps_router = APIRouter(prefix="/v1/apps", tags=["apps"])

#: What each kind of route can answer besides its success.
READ = error_responses(404)
LIST: dict[int | str, dict[str, Any]] = {}
CHANGE = error_responses(404, 409)
#: A change with a JSON body: 400 when the body is not JSON at all.
CHANGE_BODY = error_responses(400, 404, 409)


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.core.registry


MAX_REASON = 500
REASON_HELP = "Why (kept in the audit event, shown by history)."


def _why(reason: str | None) -> dict[str, Any] | None:
    """The audit detail of a change made for ``reason``."""
    reason = (reason or "").strip()
    return {"reason": reason} if reason else None


class Change(StrictBody):
    reason: str | None = Field(None, max_length=MAX_REASON)
    """Why (kept in the audit event, shown by history)."""


class AliasMove(Change):
    version: VersionField
    expected_revision: RevisionField | None = None
    """The alias's revision the caller last saw: the move fails (409) if it moved since."""


class Promote(Change):
    version: VersionField
    to: AliasField = PRODUCTION


class Rollback(Change):
    alias: AliasField = PRODUCTION


class Canary(Change):
    version: VersionField
    percent: PercentField = 10


class PinVersion(Change):
    version: VersionField


class PinAlias(Change):
    alias: AliasField


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


@router.get("", responses=LIST)
async def list_models(request: Request) -> list[dict[str, Any]]:
    return [m.to_dict() for m in await asyncio.to_thread(_registry(request).list_models)]


@router.get("/{name}", responses=READ)
async def show_model(name: ModelName, request: Request) -> dict[str, Any]:
    return (await asyncio.to_thread(_registry(request).show, name)).to_dict()


@router.get("/{name}/versions", responses=READ)
async def versions(name: ModelName, request: Request) -> list[dict[str, Any]]:
    info = await asyncio.to_thread(_registry(request).show, name)
    return [v.to_dict() for v in info.versions]


@router.get("/{name}/versions/{version}", responses=READ)
async def version(name: ModelName, version: VersionNumber, request: Request) -> dict[str, Any]:
    """The version, its lineage (``source``) and, for a trained version, its training report
    (held-out scores, confusion matrix, threshold, mistakes; pictures under ``pictures/``)."""
    info = await asyncio.to_thread(_registry(request).resolve, name, version)
    body = info.to_dict()
    report = info.path / "report.json"
    if report.is_file():
        body["report"] = json.loads(await asyncio.to_thread(report.read_text))
        body["pictures"] = sorted(
            f"/v1/models/{name}/versions/{version}/pictures/{p.name}"
            for p in info.path.glob("*.png")
        )
    return body


PictureName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}\.png$")]


@router.get(
    "/{name}/versions/{version}/pictures/{picture}",
    responses={**READ, 200: {"content": {"image/png": {}}}},
    response_class=Response,
)
async def picture(
    name: ModelName, version: VersionNumber, picture: PictureName, request: Request
) -> Response:
    """A picture of a trained version's report (``confusion.png``, ``curves.png``)."""
    info = await asyncio.to_thread(_registry(request).resolve, name, version)
    path = info.path / picture
    if not path.is_file():
        raise NotFound(f"{name}:{version} has no picture {picture!r}")
    return Response(await asyncio.to_thread(path.read_bytes), media_type="image/png")


@router.get("/{name}/aliases", responses=READ)
async def aliases(name: ModelName, request: Request) -> dict[str, int]:
    return (await asyncio.to_thread(_registry(request).show, name)).aliases


@router.put("/{name}/aliases/{alias}", responses=CHANGE_BODY)
async def move_alias(
    name: ModelName, alias: AliasName, body: AliasMove, request: Request
) -> dict[str, Any]:
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


@router.delete("/{name}/aliases/{alias}", status_code=204, responses=CHANGE)
async def delete_alias(name: ModelName, alias: AliasName, request: Request) -> None:
    """Remove an alias (409 while an app is pinned to it); ``rollback`` brings it back."""
    reg = _registry(request)
    await _change(request, lambda: reg.delete_alias(name, alias, _actor(request)))


@router.post("/{name}/promote", responses=CHANGE_BODY)
async def promote(name: ModelName, body: Promote, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await _change(
        request,
        lambda: reg.promote(name, body.version, body.to, _actor(request), _why(body.reason)),
    )
    return v.to_dict()


@router.post("/{name}/rollback", responses=CHANGE_BODY)
async def rollback(
    name: ModelName, request: Request, body: Rollback | None = Body(None)
) -> dict[str, Any]:
    """Move an alias (``production`` without a body) back to where it was before its last
    move."""
    reg = _registry(request)
    alias = body.alias if body is not None else PRODUCTION
    why = _why(body.reason if body is not None else None)
    return (
        await _change(request, lambda: reg.rollback(name, alias, _actor(request), why))
    ).to_dict()


@router.post("/{name}/canary", responses=CHANGE_BODY)
async def canary(name: ModelName, body: Canary, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await _change(
        request,
        lambda: reg.canary(name, body.version, body.percent, _actor(request), _why(body.reason)),
    )
    return v.to_dict()


@router.delete("/{name}/canary", status_code=204, responses=CHANGE)
async def end_canary(name: ModelName, request: Request, reason: str | None = REASON) -> None:
    """End the canary: production takes all un-pinned traffic again."""
    reg = _registry(request)
    await _change(request, lambda: reg.end_canary(name, _actor(request), _why(reason)))


@router.get("/{name}/history", responses=READ)
async def history(name: ModelName, request: Request) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_registry(request).history, name)


@router.delete("/{name}/versions/{version}", status_code=204, responses=CHANGE)
async def delete_version(name: ModelName, version: VersionNumber, request: Request) -> None:
    """Remove a version (409 while an alias, an app pin or a question needs it)."""
    reg = _registry(request)
    refs = await asyncio.to_thread(_graph_refs, request)
    await _change(request, lambda: reg.delete_version(name, version, _actor(request), refs))


@apps_router.get("", responses=LIST)
async def list_apps(request: Request) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_registry(request).app_pins.list)


@apps_router.post("/{app}", status_code=201, responses=error_responses(409))
async def add_app(app: AppName, request: Request) -> dict[str, Any]:
    pins = _registry(request).app_pins
    await _change(request, lambda: pins.add(app, _actor(request)))
    return await asyncio.to_thread(pins.show, app)


@apps_router.get("/{app}", responses=READ)
async def show_app(app: AppName, request: Request) -> dict[str, Any]:
    """An app's pins and its history."""
    return await asyncio.to_thread(_registry(request).app_pins.show, app)


@apps_router.delete("/{app}", status_code=204, responses=CHANGE)
async def remove_app(app: AppName, request: Request) -> None:
    pins = _registry(request).app_pins
    await _change(request, lambda: pins.remove(app, _actor(request)))


@apps_router.put("/{app}/pins/{model}", responses=CHANGE_BODY)
async def pin(
    app: AppName, model: ModelName, body: PinVersion | PinAlias, request: Request
) -> dict[str, Any]:
    """Pin the app to a version (``{"version": 3}``) or an alias (``{"alias": "stable"}``)."""
    pins = _registry(request).app_pins
    version = body.version if isinstance(body, PinVersion) else None
    alias = body.alias if isinstance(body, PinAlias) else None
    return await _change(
        request,
        lambda: pins.pin(app, model, version, alias, _actor(request), _why(body.reason)),
    )


@apps_router.delete("/{app}/pins/{model}", status_code=204, responses=CHANGE)
async def unpin(
    app: AppName, model: ModelName, request: Request, reason: str | None = REASON
) -> None:
    pins = _registry(request).app_pins
    await _change(request, lambda: pins.unpin(app, model, _actor(request), _why(reason)))
