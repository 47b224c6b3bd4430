from __future__ import annotations

import io
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from argus.db.engine import make_engine
from argus.db.schema import PredictionRecord
from argus.ingest.checkpoint import pipeline_id
from argus.settings import Settings
from tests.inprocess import LoopThread, running_loop
from tests.tiny_model import register_tiny


@pytest.fixture
def ingest_settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    register_tiny(settings, tmp_path / "tiny-src")
    return settings


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ARGUS_HOME": str(settings.home),
        "ARGUS_DATABASE_URL": settings.db_url,
        "ARGUS_INTRA_OP_THREADS": "1",
        "ARGUS_MAX_WAIT_MS": "2",
    }


def small_photos(photos: dict[str, bytes], count: int, seed: int = 3) -> list[tuple[str, bytes]]:
    """``count`` distinct small images (JPEG and PNG) cut from the real sample photos."""
    rng = random.Random(seed)
    sources = [Image.open(io.BytesIO(d)).convert("RGB") for d in photos.values()]
    out: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()
    while len(out) < count:
        img = rng.choice(sources)
        w, h = img.size
        side = rng.randint(40, 96)
        size = rng.randint(side, min(w, h))
        x, y = rng.randint(0, w - size), rng.randint(0, h - size)
        small = img.crop((x, y, x + size, y + size)).resize((side, side))
        buf = io.BytesIO()
        fmt = "PNG" if len(out) % 5 == 0 else "JPEG"
        small.save(buf, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
        data = buf.getvalue()
        if data not in seen:
            seen.add(data)
            out.append((f"img{len(out):04d}.{fmt.lower().replace('jpeg', 'jpg')}", data))
    return out


def bad_files(good: list[tuple[str, bytes]], count: int) -> dict[str, tuple[bytes, str]]:
    """Truncated JPEGs, text that is not an image, zero-byte files; with the expected reason."""
    out: dict[str, tuple[bytes, str]] = {}
    jpegs = [d for n, d in good if n.endswith(".jpg")]
    for i in range(count):
        kind = i % 3
        if kind == 0:
            data = jpegs[i % len(jpegs)]
            out[f"cut{i:03d}.jpg"] = (data[: len(data) // 2], "truncated")
        elif kind == 1:
            out[f"notes{i:03d}.jpg"] = (f"not a picture {i}\n".encode(), "not an image")
        else:
            out[f"empty{i:03d}.png"] = (b"", "empty")
    return out


def records_per_image(settings: Settings, question: str, out: Path) -> Counter[str]:
    """Prediction records the pipeline ``question`` -> dir sink ``out`` wrote, per image digest."""
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(PredictionRecord.image_sha256, func.count())
                .where(PredictionRecord.job_id == pipeline_id(question, f"dir:{out}"))
                .group_by(PredictionRecord.image_sha256)
            ).all()
    finally:
        engine.dispose()
    return Counter(dict(rows))


@pytest.fixture(scope="package")
def loop() -> Iterator[LoopThread]:
    with running_loop() as running:
        yield running


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home holding only the tiny classifier (question ``tiny``), shared by a module's tests
    that do not change it."""
    work = tmp_path_factory.mktemp("tiny")
    settings = Settings(home=work / "home")
    register_tiny(settings, work / "tiny-src")
    return settings
