"""``GET /v1/records``: prediction records by question, time, image, source, app or the
model version that answered."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from argus.contracts import SOURCES
from argus.http.docs import error_responses
from argus.http.params import text_query
from argus.models.versions import NAME_PATTERN
from argus.records import MAX_LIMIT, find_records, parse_time

router = APIRouter(prefix="/v1/records", tags=["records"], responses=error_responses(400))
TIME = {"format": "date-time"}
#: ``NAME`` or ``NAME:VERSION`` (a name never holds a colon).
MODEL_FILTER = f"^{NAME_PATTERN[1:-1]}(?::[1-9][0-9]{{0,9}})?$"


@router.get("")
async def list_records(
    request: Request,
    question: str | None = text_query(),
    since: str | None = Query(
        None, description="ISO 8601 time; records at or after it.", json_schema_extra=TIME
    ),
    until: str | None = Query(
        None, description="ISO 8601 time; records before it.", json_schema_extra=TIME
    ),
    image: str | None = text_query("The image's sha256."),
    source: str | None = Query(
        None, description="Where the question came from.", pattern=f"^({'|'.join(SOURCES)})$"
    ),
    app: str | None = text_query(),
    model: str | None = Query(
        None,
        description=(
            "Records whose answer used this model (NAME), or this version of it (NAME:VERSION: "
            "what a canary answered, say)."
        ),
        pattern=MODEL_FILTER,
    ),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
) -> list[dict[str, Any]]:
    """Prediction records, newest first."""
    engine = request.app.state.core.engine
    name, _, number = (model or "").partition(":")
    version = int(number) if number else None
    return await asyncio.to_thread(
        find_records,
        engine,
        question=question,
        since=parse_time(since, "since") if since is not None else None,
        until=parse_time(until, "until") if until is not None else None,
        image_sha256=image,
        source=source,
        app=app,
        model=name or None,
        version=version,
        limit=limit,
    )
