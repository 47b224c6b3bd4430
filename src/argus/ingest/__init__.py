"""Streaming ingest: images from a folder or a Redis stream, asked a question, written with
their answers to a sink; bad input goes to quarantine with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from argus.errors import ConfigError
from argus.ingest.sources import FolderSource, RedisSource


@dataclass
class SourceOptions:
    settle_seconds: float = 0.5
    remove_done: bool = False
    once: bool = False
    redis_url: str = "redis://127.0.0.1:6379/0"
    group: str = "argus-ingest"
    consumer: str | None = None
    claim_idle: float = 60.0
    allow_paths: list[Path] = field(default_factory=list)
    allow_urls: list[str] = field(default_factory=list)
    batch: int = 32


def open_source(spec: str, options: SourceOptions) -> FolderSource | RedisSource:
    """``dir:PATH`` or ``redis:STREAM``."""
    kind, _, rest = spec.partition(":")
    if kind == "dir" and rest:
        return FolderSource(
            Path(rest).expanduser(),
            settle_seconds=options.settle_seconds,
            remove_done=options.remove_done,
            watch=not options.once,
        )
    if kind == "redis" and rest:
        return RedisSource(
            options.redis_url,
            rest,
            group=options.group,
            consumer=options.consumer,
            claim_idle=options.claim_idle,
            allow_paths=options.allow_paths,
            allow_urls=options.allow_urls,
            batch=options.batch,
            once=options.once,
        )
    raise ConfigError(f"unknown source {spec!r}: use dir:PATH or redis:STREAM")

