"""``argus worker``: answer queued jobs with the models kept in memory."""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import typer

from argus.cli.common import handles_errors, settings

log = logging.getLogger(__name__)


@handles_errors
def worker(
    questions: str = typer.Option(
        None, "--questions",
        help="Comma-separated questions to take, @train for training jobs (default: all).",
    ),
    concurrency: int = typer.Option(
        16, "--concurrency", min=1, max=1024, help="Jobs in flight at once (claimed as a batch)."
    ),
    lease_seconds: float = typer.Option(
        None, "--lease-seconds", min=1.0, help="How long a claim holds before others may retry it."
    ),
    grace_seconds: float = typer.Option(
        10.0, "--grace-seconds", min=0.0, help="On stop, how long running jobs may finish."
    ),
    job_timeout: float = typer.Option(
        300.0, "--job-timeout", min=1.0, help="A job not answered in this long fails (retried)."
    ),
    preload: bool = typer.Option(True, help="Load the production models before claiming."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Take jobs from the queue and answer them until stopped (SIGTERM or Ctrl-C)."""
    from argus.jobs import open_queue
    from argus.jobs.training import TRAIN_QUESTION
    from argus.jobs.worker import Worker
    from argus.server import local_core

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    s = settings()
    wanted = [q.strip() for q in (questions or "").split(",") if q.strip()]

    async def run() -> None:
        core = local_core(s)
        try:
            for name in wanted:
                if name != TRAIN_QUESTION:  # training jobs: not a question
                    core.question(name)  # unknown names fail here, not on every job
            if preload:
                await core.preload()
            queue = open_queue(s, core.engine)
            runner = Worker(
                core,
                queue,
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                questions=wanted or None,
                grace_seconds=grace_seconds,
                job_timeout=job_timeout,
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runner.stop)
            log.info(
                "worker %s taking %s, %d at a time", runner.owner,
                ", ".join(wanted) or "every question", concurrency,
            )
            stats = await runner.run()
            log.info("worker stopped: %s", json.dumps(stats.to_dict()))
        finally:
            await core.close()

    asyncio.run(run())

