"""Durable jobs: a queue of questions in the database, answered later by workers."""

from __future__ import annotations

from sqlalchemy import Engine

from argus.db.engine import make_engine, migrate
from argus.jobs.images import ImageStore
from argus.jobs.queue import JobQueue
from argus.jobs.types import Claimed, JobInfo, JobPolicy
from argus.settings import Settings

__all__ = ["Claimed", "ImageStore", "JobInfo", "JobPolicy", "JobQueue", "open_queue"]


def open_queue(settings: Settings, engine: Engine | None = None) -> JobQueue:
    """The queue of an installation: its database and ``<home>/images``."""
    if engine is None:
        engine = make_engine(settings.db_url)
        migrate(engine)
    return JobQueue(engine, ImageStore(settings.home / "images"), JobPolicy.from_settings(settings))
