"""``/v1/models…``: the registry over REST."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from argus.models.registry import PRODUCTION, ModelRegistry

router = APIRouter(prefix="/v1/models", tags=["models"])


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.core.registry


class AliasMove(BaseModel):
    version: int = Field(..., ge=1)
    expected_revision: int | None = None


class Promote(BaseModel):
    version: int = Field(..., ge=1)
    to: str = PRODUCTION


class Rollback(BaseModel):
    alias: str = PRODUCTION


class Canary(BaseModel):
    version: int = Field(..., ge=1)
    percent: int = Field(10, ge=0, le=100)


def _actor(request: Request) -> str:
    return f"http:{request.client.host if request.client else '?'}"


@router.get("")
async def list_models(request: Request) -> list[dict[str, Any]]:
    return [m.to_dict() for m in await asyncio.to_thread(_registry(request).list_models)]


@router.get("/{name}")
async def show_model(name: str, request: Request) -> dict[str, Any]:
    return (await asyncio.to_thread(_registry(request).show, name)).to_dict()


@router.get("/{name}/versions")
async def versions(name: str, request: Request) -> list[dict[str, Any]]:
    info = await asyncio.to_thread(_registry(request).show, name)
    return [v.to_dict() for v in info.versions]


@router.get("/{name}/versions/{version}")
async def version(name: str, version: int, request: Request) -> dict[str, Any]:
    return (await asyncio.to_thread(_registry(request).resolve, name, version)).to_dict()


@router.get("/{name}/aliases")
async def aliases(name: str, request: Request) -> dict[str, int]:
    return (await asyncio.to_thread(_registry(request).show, name)).aliases


@router.put("/{name}/aliases/{alias}")
async def move_alias(name: str, alias: str, body: AliasMove, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await asyncio.to_thread(
        lambda: reg.set_alias(
            name,
            alias,
            body.version,
            actor=_actor(request),
            expected_revision=body.expected_revision,
        )
    )
    return v.to_dict()


@router.post("/{name}/promote")
async def promote(name: str, body: Promote, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await asyncio.to_thread(reg.promote, name, body.version, body.to, _actor(request))
    return v.to_dict()


@router.post("/{name}/rollback")
async def rollback(name: str, body: Rollback, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    return (await asyncio.to_thread(reg.rollback, name, body.alias, _actor(request))).to_dict()


@router.post("/{name}/canary")
async def canary(name: str, body: Canary, request: Request) -> dict[str, Any]:
    reg = _registry(request)
    v = await asyncio.to_thread(reg.canary, name, body.version, body.percent, _actor(request))
    return v.to_dict()


@router.get("/{name}/history")
async def history(name: str, request: Request) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_registry(request).history, name)


@router.delete("/{name}/versions/{version}", status_code=204)
async def delete_version(name: str, version: int, request: Request) -> None:
    reg = _registry(request)
    await asyncio.to_thread(reg.delete_version, name, version, _actor(request))
