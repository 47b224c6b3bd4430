"""Submitting a job the way every transport does: check the question and the image first,
so a caller hears about a bad request now rather than from a dead job later."""

from __future__ import annotations

import asyncio

from argus.contracts import AskOptions
from argus.core import Core
from argus.errors import BadInput
from argus.images import open_image
from argus.jobs.queue import JobQueue
from argus.jobs.types import JobInfo


def check_request(
    core: Core, question: str, data: bytes, options: AskOptions | None = None
) -> None:
    # A who job's gallery must exist and be the asking app's now, not only when it runs.
    core.gallery_index(core.question(question), options or AskOptions())
    open_image(data, core.limits)


async def submit_job(
    core: Core,
    queue: JobQueue,
    question: str,
    data: bytes,
    *,
    options: AskOptions | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    max_attempts: int | None = None,
) -> tuple[JobInfo, bool]:
    if not -1000 <= priority <= 1000:
        raise BadInput(f"priority must be between -1000 and 1000, not {priority}")
    await asyncio.to_thread(check_request, core, question, data, options)
    return await asyncio.to_thread(
        lambda: queue.submit(
            question,
            data,
            options=options,
            priority=priority,
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            max_attempts=max_attempts,
        )
    )
