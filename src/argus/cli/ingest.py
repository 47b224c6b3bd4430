"""``argus ingest``: a long-running pipeline from a folder or Redis stream to a sink."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from argus.cli import common
from argus.cli.common import handles_errors, settings


@handles_errors
def ingest(
    source: str = typer.Option(..., "--source", help="dir:INCOMING or redis:STREAM."),
    question: str = typer.Option(..., "--question", help="The question asked of every image."),
    sink: str = typer.Option(..., "--sink", help="dir:OUT or s3://BUCKET/PREFIX."),
    gateway: str = typer.Option(
        None, "--gateway", help="Ask a remote gateway (http://host:port) instead of local models."
    ),
    gateway_token: str = typer.Option(None, "--gateway-token", envvar="ARGUS_GATEWAY_TOKEN"),
    concurrency: int = typer.Option(16, "--concurrency", min=1, max=1024),
    top_k: int = common.TOP_K,
    app_name: str = common.APP,
    version: int = common.VERSION,
    alias: str = common.ALIAS,
    conf: float = common.CONF,
    gallery: str = common.GALLERY,
    crops: bool = typer.Option(False, "--crops", help="Keep aligned face crops in answers."),
    once: bool = typer.Option(
        False, "--once", help="Handle what is there now, then exit (no watching)."
    ),
    settle_seconds: float = typer.Option(
        0.5, "--settle-seconds", min=0.0, help="A file is complete once unchanged this long."
    ),
    remove_source: bool = typer.Option(
        False, "--remove-source", help="Delete source files once stored (bad ones always move)."
    ),
    redis_url: str = typer.Option(
        "redis://127.0.0.1:6379/0", "--redis-url", envvar="ARGUS_REDIS_URL"
    ),
    group: str = typer.Option("argus-ingest", "--group", help="Redis consumer group."),
    consumer: str = typer.Option(None, "--consumer", help="Consumer name (default host-pid)."),
    claim_idle: float = typer.Option(
        60.0, "--claim-idle", min=0.1, help="Take over entries idle this long (seconds)."
    ),
    allow_path: list[Path] = typer.Option(
        None, "--allow-path", help="Folder stream entries' paths may point into (repeatable)."
    ),
    allow_url: list[str] = typer.Option(
        None, "--allow-url", help="URL prefix of a store entries may point at (repeatable)."
    ),
    s3_endpoint: str = typer.Option(None, "--s3-endpoint", envvar="AWS_ENDPOINT_URL"),
    json_log: bool = typer.Option(False, "--json-log", help="One JSON line per event."),
    log_level: str = typer.Option("warning", help="debug, info, warning or error."),
) -> None:
    """Ask QUESTION of every image from SOURCE and store image + answer in SINK."""
    from argus.contracts import AskOptions
    from argus.db.engine import make_engine, migrate
    from argus.ingest import SourceOptions, open_source
    from argus.ingest.askers import GatewayAsker, LocalAsker
    from argus.ingest.checkpoint import Checkpoint, pipeline_id
    from argus.ingest.pipeline import Pipeline
    from argus.ingest.progress import Display, JsonLog
    from argus.ingest.sinks import open_sink
    from argus.ingest.sources import RedisSource

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    s = settings()
    fields = {"top_k": top_k, "app": app_name, "version": version, "alias": alias, "conf": conf,
              "crops": crops, "gallery": gallery}
    options = AskOptions.parse(fields, source="ingest")
    src = open_source(
        source,
        SourceOptions(
            settle_seconds=settle_seconds, remove_done=remove_source, once=once,
            redis_url=redis_url, group=group, consumer=consumer, claim_idle=claim_idle,
            allow_paths=list(allow_path or []), allow_urls=list(allow_url or []),
            batch=max(8, concurrency * 2),
        ),
    )
    out = open_sink(sink, s3_endpoint)
    out.check()

    async def run() -> dict[str, Any]:
        asker: GatewayAsker | LocalAsker
        if gateway:
            asker = GatewayAsker(gateway, question, options, gateway_token)
            engine = make_engine(s.db_url)
            migrate(engine)
        else:
            from argus.server import local_core

            core = local_core(s)
            asker = LocalAsker(core, question, options)
            engine = core.engine
        try:
            await asker.start()
            checkpoint = Checkpoint(engine, pipeline_id(question, out.url))
            pipeline = Pipeline(src, asker, out, checkpoint, question, app=app_name,
                                concurrency=concurrency)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, pipeline.stop)
            title = f"ingest {question}"
            if json_log:
                jlog = JsonLog(lambda: pipeline.stats, src.backlog)
                pipeline.on_event = jlog.emit
                jlog.summary("started")
                stats = await pipeline.run()
                jlog.summary("stopped")
            else:
                with Display(title, lambda: pipeline.stats, src.backlog) as display:
                    pipeline.on_event = display.emit
                    stats = await pipeline.run()
            return stats.to_dict()
        finally:
            if isinstance(src, RedisSource):
                await src.close()
            await asker.close()
            if gateway:
                engine.dispose()

    result = asyncio.run(run())
    if not json_log:  # one machine-readable summary line after the live display
        sys.stdout.write(json.dumps(result) + "\n")

