"""``argus jobs submit|show|list|cancel``: the durable queue from the command line."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from argus.cli import common
from argus.cli.common import console, err_console, handles_errors, print_json, settings
from argus.cli.tables import Col, fit
from argus.errors import BadInput

app = typer.Typer(help="Submit questions as durable jobs and follow them.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")
FINAL = ("done", "dead", "cancelled")


def _queue() -> Any:
    from argus.jobs import open_queue

    return open_queue(settings())


@app.command()
@handles_errors
def submit(
    question: str = typer.Argument(..., help="labels, faces, or any registered model."),
    images: list[Path] = typer.Argument(..., help="Image files; one job each."),
    priority: int = typer.Option(0, help="Higher runs first."),
    idempotency_key: str = typer.Option(
        None, "--idempotency-key", help="Submitting again with the same key returns the same job."
    ),
    callback_url: str = typer.Option(
        None, "--callback-url", help="POSTed the answer when done (host must be allowed)."
    ),
    max_attempts: int = typer.Option(None, "--max-attempts", help="Tries before 'dead'."),
    top_k: int = common.TOP_K,
    app_name: str = common.APP,
    version: int = common.VERSION,
    alias: str = common.ALIAS,
    conf: float = common.CONF,
    crops: bool = typer.Option(False, "--crops", help="Aligned face crops in face answers."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the answers."),
    json_out: bool = JSON,
) -> None:
    """Queue QUESTION for each IMAGE; prints the job ids (202-style, answered later)."""
    from argus.contracts import AskOptions
    from argus.jobs import open_queue
    from argus.jobs.submit import submit_job
    from argus.server import local_core

    if idempotency_key and len(images) > 1:
        raise BadInput("--idempotency-key names one job, so give one image with it")
    s = settings()
    fields = {"top_k": top_k, "app": app_name, "version": version, "alias": alias, "conf": conf,
              "crops": crops}
    options = AskOptions.parse(fields, source="job")

    async def run() -> list[dict[str, Any]]:
        core = local_core(s)
        queue = open_queue(s, core.engine)
        out: list[dict[str, Any]] = []
        try:
            for path in images:
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise BadInput(f"cannot read {path}: {exc.strerror}") from None
                job, created = await submit_job(
                    core, queue, question, data, options=options, priority=priority,
                    idempotency_key=idempotency_key, callback_url=callback_url,
                    max_attempts=max_attempts,
                )
                out.append({"file": str(path), "created": created, **job.to_dict()})
            if wait:
                out = [{**o, **_wait(queue, o["id"]).to_dict()} for o in out]
        finally:
            await core.close()
        return out

    results = asyncio.run(run())
    if json_out:
        print_json(results if len(results) > 1 else results[0])
        return
    for r in results:
        note = "" if r["created"] else " (existing job for this idempotency key)"
        console.print(f"{r['file']}: {r['id']} {r['status']}{note}", highlight=False)
        if r["status"] == "done" and r.get("answer"):
            print_json(r["answer"]["answer"])
        elif r.get("error"):
            err_console.print(f"  error: {r['error']}", highlight=False, soft_wrap=True)


def _wait(queue: Any, job_id: str, timeout: float = 3600.0) -> Any:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        job = queue.get(job_id)
        if job.status in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


@app.command()
@handles_errors
def show(job_id: str = typer.Argument(..., help="A job id or a unique start of one."),
         json_out: bool = JSON) -> None:
    """Status, attempts, answer and error of one job."""
    queue = _queue()
    job = queue.get(queue.find(job_id))
    if json_out:
        print_json(job.to_dict())
        return
    d = job.to_dict()
    table = Table(show_header=False, box=None)
    for key in ("id", "question", "status", "priority", "attempts", "max_attempts", "created_at",
                "finished_at", "error", "lease_owner", "lease_expires_at", "run_after"):
        if d[key] is not None:
            value = f"{d[key]}" if key != "attempts" else f"{d['attempts']} of {d['max_attempts']}"
            table.add_row(key, value)
    table.add_row("image", f"sha256:{job.image_sha256} ({job.image_bytes:,} bytes)")
    if job.callback_url:
        table.add_row("callback_url", job.callback_url)
    if job.callback:
        cb = job.callback
        text = f"{cb['status']} ({cb['attempts']} attempt(s))"
        if cb["delivered_at"]:
            text += f" at {cb['delivered_at']}"
        elif cb["next_at"]:
            text += f", next try {cb['next_at']}"
        if cb["last_error"]:
            text += f"; last error: {cb['last_error']}"
        table.add_row("callback", text)
    console.print(table)
    if job.answer:
        print_json(job.answer)


@app.command("list")
@handles_errors
def list_jobs(
    status: str = typer.Option(None, help="queued, running, done, failed, dead or cancelled."),
    question: str = typer.Option(None),
    limit: int = typer.Option(50, min=1, max=10_000),
    json_out: bool = JSON,
) -> None:
    """Jobs, newest first, with a count per status."""
    queue = _queue()
    jobs = queue.list_jobs(status=status, question=question, limit=limit)
    if json_out:
        print_json([j.to_dict() for j in jobs])
        return
    columns = [Col("id", key=True), Col("question"), Col("status"), Col("tries", drop=2),
               Col("created", drop=3), Col("error", drop=1)]
    rows = [
        (j.id, j.question, j.status, f"{j.attempts}/{j.max_attempts}",
         j.created_at.isoformat()[:19] if j.created_at else "-", (j.error or "")[:60])
        for j in jobs
    ]
    console.print(fit(columns, rows))
    counts = queue.counts()
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no jobs")


@app.command()
@handles_errors
def cancel(job_id: str = typer.Argument(..., help="A job id or a unique start of one."),
           json_out: bool = JSON) -> None:
    """Cancel a job that has not started (or is waiting to retry)."""
    queue = _queue()
    job = queue.cancel(queue.find(job_id))
    if json_out:
        print_json(job.to_dict())
    else:
        console.print(f"{job.id}: {job.status}")

