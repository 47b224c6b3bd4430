"""``/v1/jobs…``: the durable queue over REST. Handlers only convert and delegate."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from argus.contracts import AskOptions, parse_int
from argus.core import Core
from argus.errors import BadInput
from argus.http.body import image_body, read_upload
from argus.http.docs import error_responses
from argus.jobs import JobQueue, open_queue
from argus.jobs.submit import submit_job
from argus.jobs.types import STATUSES

router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 503),
)

JOB_BODY = image_body(
    required=("question",),
    question="string",
    top_k="integer",
    conf="number",
    crops="boolean",
    version="integer",
    alias="string",
    app="string",
    priority="integer",
    idempotency_key="string",
    callback_url="string",
    max_attempts="integer",
)


def _queue(request: Request) -> JobQueue:
    state = request.app.state
    queue: JobQueue | None = getattr(state, "jobs", None)
    if queue is None:
        core: Core = state.core
        queue = open_queue(core.settings, core.engine)
        state.jobs = queue
    return queue


@router.post("", status_code=202, openapi_extra=JOB_BODY)
async def submit(request: Request) -> JSONResponse:
    """Queue a question about the image (raw body, or multipart field ``image``).

    Parameters in the query or as multipart fields: ``question`` (required), ``top_k``,
    ``conf``, ``crops``, ``version``, ``alias``, ``app`` (or header ``X-Argus-App``),
    ``priority`` (higher first), ``idempotency_key`` (or header ``Idempotency-Key``),
    ``callback_url`` (a configured host), ``max_attempts``. Answers 202 with the job; poll
    ``GET /v1/jobs/{id}``.
    """
    core: Core = request.app.state.core
    data, form = await read_upload(request, core.settings.max_image_bytes)
    fields: dict[str, Any] = {**request.query_params, **form}
    question = fields.get("question")
    if not question:
        raise BadInput("say which question to ask: the 'question' field or query parameter")
    options = AskOptions.parse(fields, app=request.headers.get("x-argus-app"))
    job, created = await submit_job(
        core,
        _queue(request),
        question,
        data,
        options=options,
        priority=parse_int("priority", fields.get("priority"), -1000, 1000) or 0,
        idempotency_key=request.headers.get("idempotency-key") or fields.get("idempotency_key"),
        callback_url=fields.get("callback_url") or None,
        max_attempts=parse_int("max_attempts", fields.get("max_attempts"), 1, 100),
    )
    body = {**job.to_dict(), "created": created, "url": f"/v1/jobs/{job.id}"}
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/{job_id}")
async def show(job_id: str, request: Request) -> dict[str, Any]:
    """Status (queued, running, done, failed, dead, cancelled), attempts, answer, error."""
    return (await asyncio.to_thread(_queue(request).get, job_id)).to_dict()


@router.get("")
async def list_jobs(
    request: Request,
    status: str | None = None,
    question: str | None = None,
    limit: int = 100,
    before: str | None = None,
) -> dict[str, Any]:
    """Jobs, newest first; ``status`` filters, ``before`` (a job id) pages backwards."""
    if status is not None and status not in STATUSES:
        raise BadInput(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    queue = _queue(request)
    jobs = await asyncio.to_thread(
        queue.list_jobs, status=status, question=question, limit=limit, before=before
    )
    return {"jobs": [j.to_dict() for j in jobs], "counts": await asyncio.to_thread(queue.counts)}


@router.delete("/{job_id}")
async def cancel(job_id: str, request: Request) -> dict[str, Any]:
    """Cancel a queued job (or one waiting to retry); 409 when it runs or has finished."""
    return (await asyncio.to_thread(_queue(request).cancel, job_id)).to_dict()
