from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from argus.jobs import open_queue
from argus.jobs.queue import JobQueue
from argus.jobs.types import JobPolicy
from argus.settings import Settings
from tests.tiny_model import register_tiny


@pytest.fixture
def tiny_settings(db_url: str, tmp_path: Path) -> Settings:
    """A home (SQLite or PostgreSQL) holding only the tiny classifier, question ``tiny``."""
    settings = Settings(home=tmp_path / "home", database_url=db_url, preload=True)
    register_tiny(settings, tmp_path / "tiny-src")
    return settings


@pytest.fixture
def queue(db_url: str, tmp_path: Path) -> Iterator[JobQueue]:
    settings = Settings(home=tmp_path / "qhome", database_url=db_url)
    q = open_queue(settings)
    q.policy = JobPolicy(lease_seconds=30, max_attempts=3, backoff_seconds=1.0,
                         callback_hosts=("127.0.0.1",))
    try:
        yield q
    finally:
        q.engine.dispose()


def small_images(photos: dict[str, bytes], count: int, side: int = 48) -> list[bytes]:
    """``count`` distinct small JPEGs cut from the real sample photos."""
    import io
    import random

    from PIL import Image

    rng = random.Random(7)
    sources = [Image.open(io.BytesIO(data)).convert("RGB") for data in photos.values()]
    out: list[bytes] = []
    seen: set[bytes] = set()
    while len(out) < count:
        img = rng.choice(sources)
        w, h = img.size
        size = rng.randint(side, min(w, h))
        x, y = rng.randint(0, w - size), rng.randint(0, h - size)
        buf = io.BytesIO()
        img.crop((x, y, x + size, y + size)).resize((side, side)).save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        if data not in seen:
            seen.add(data)
            out.append(data)
    return out


def worker_env(settings: Settings) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "ARGUS_HOME": str(settings.home),
        "ARGUS_DATABASE_URL": settings.db_url,
        "ARGUS_INTRA_OP_THREADS": "1",
        "ARGUS_MAX_WAIT_MS": "2",
    }
