"""``GET /v1/records``: prediction records by question, time, image, source, app or the
model version that answered."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from argus.contracts import MAX_VERSION, SOURCES
from argus.http.docs import error_responses
from argus.http.params import text_query
from argus.records import MAX_LIMIT, find_records, parse_time

router = APIRouter(prefix="/v1/records", tags=["records"], responses=error_responses(400))
TIME = {"format": "date-time"}


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
    model: str | None = text_query("Records whose answer used this model."),
    version: int | None = Query(
        None, ge=1, le=MAX_VERSION,
        description="With model: records that version of it answered (a canary's, say).",
    ),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
) -> list[dict[str, Any]]:
    """Prediction records, newest first."""
    engine = request.app.state.core.engine
    return await asyncio.to_thread(
        find_records,
        engine,
        question=question,
        since=parse_time(since, "since") if since is not None else None,
        until=parse_time(until, "until") if until is not None else None,
        image_sha256=image,
        source=source,
        app=app,
        model=model,
        version=version,
        limit=limit,
    )
