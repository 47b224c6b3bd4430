"""``/v1/jobs…``: the durable queue over REST. Handlers only convert and delegate."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from argus.contracts import AskOptions, parse_int
from argus.core import Core
from argus.errors import BadInput
from argus.graphs.spec import QUESTION_NAME
from argus.http.body import image_body, read_upload
from argus.http.docs import (
    ASK_QUERY,
    ask_descriptions,
    error_responses,
    query_parameters,
)
from argus.http.galleries import vectors_need_admin
from argus.http.params import NO_NUL, JobId, text_query
from argus.jobs import JobQueue, open_queue
from argus.jobs.submit import submit_job
from argus.jobs.types import STATUSES
from argus.models.versions import NAME_LENGTH

MAX_LIST = 10_000

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

#: The query of ``POST /v1/jobs``: the question, the image API's options, and the job's own.
JOB_QUERY: dict[str, dict[str, Any]] = {
    "question": {"type": "string", "pattern": QUESTION_NAME.pattern, "maxLength": NAME_LENGTH},
    **{name: schema for name, schema in ASK_QUERY.items() if name != "record"},
    "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL},
    "callback_url": {
        "type": "string",
        "pattern": r"^https?://[a-z0-9.-]+(:[0-9]{1,4})?(/[^?#\s\x00]*)?$",
        "maxLength": 2000,
    },
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
}
JOB_DESCRIPTIONS = {
    **ask_descriptions(),
    "question": "The question to ask (GET /v1/questions lists them).",
    "priority": "Higher runs first (default 0).",
    "idempotency_key": "The same key answers the job it first created (or header "
    "Idempotency-Key); 409 if the question, image or options differ.",
    "callback_url": "POSTed the answer when the job ends; its host must be one of "
    "ARGUS_CALLBACK_HOSTS (403 otherwise).",
    "max_attempts": "Tries before the job is dead-lettered (default ARGUS_JOB_MAX_ATTEMPTS).",
}
SUBMIT = {
    **image_body(),
    "parameters": query_parameters(JOB_QUERY, JOB_DESCRIPTIONS, required=("question",)),
}


def _queue(request: Request) -> JobQueue:
    state = request.app.state
    queue: JobQueue | None = getattr(state, "jobs", None)
    if queue is None:
        core: Core = state.core
        queue = open_queue(core.settings, core.engine)
        state.jobs = queue
    return queue


@router.post(
    "",
    status_code=202,
    openapi_extra=SUBMIT,
    responses=error_responses(400, 403, 404, 409, 413, 415, 499),
)
async def submit(request: Request) -> JSONResponse:
    """Queue a question about the image (raw body, or multipart field ``image``).

    The parameters go in the query (a multipart form may carry them as fields too, which win);
    the app may also come from header ``X-Argus-App``. Answers 202 with the job; poll
    ``GET /v1/jobs/{id}``.
    """
    core: Core = request.app.state.core
    data, form = await read_upload(request, core.settings.max_image_bytes)
    fields: dict[str, Any] = {**request.query_params, **form}
    for name, value in fields.items():  # PostgreSQL holds no NUL in text (it was a 500)
        if "\x00" in value:
            raise BadInput(f"{name} holds a NUL character")
    question = fields.get("question")
    if not question:
        raise BadInput("say which question to ask: the 'question' field or query parameter")
    options = AskOptions.parse(fields, app=request.headers.get("x-argus-app"))
    vectors_need_admin(core, question, request)
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


@router.get("/{job_id}", responses=error_responses(404))
async def show(job_id: JobId, request: Request) -> dict[str, Any]:
    """Status (queued, running, done, failed, dead, cancelled), attempts, answer, error."""
    return (await asyncio.to_thread(_queue(request).get, job_id)).to_dict()


@router.get("", responses=error_responses(400, 404))
async def list_jobs(
    request: Request,
    status: str | None = Query(None, json_schema_extra={"enum": list(STATUSES)}),
    question: str | None = text_query(),
    limit: int = Query(100, ge=1, le=MAX_LIST),
    before: str | None = text_query("A job id: the jobs older than it."),
) -> dict[str, Any]:
    """Jobs, newest first; ``status`` filters, ``before`` (a job id) pages backwards."""
    queue = _queue(request)
    jobs = await asyncio.to_thread(
        queue.list_jobs, status=status, question=question, limit=limit, before=before
    )
    return {"jobs": [j.to_dict() for j in jobs], "counts": await asyncio.to_thread(queue.counts)}


@router.delete("/{job_id}", responses=error_responses(404, 409))
async def cancel(job_id: JobId, request: Request) -> dict[str, Any]:
    """Cancel a queued job (or one waiting to retry); 409 when it runs or has finished."""
    return (await asyncio.to_thread(_queue(request).cancel, job_id)).to_dict()
