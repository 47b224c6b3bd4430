"""The base model's ``features`` vector of each photo, cached by (photo digest, base digest).

Re-training with a few more photos embeds only the new ones: the cache is a SQLite file per base
model under the cache directory, shared by every home on the machine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import TypeVar

import numpy as np

from argus.errors import BadInput
from argus.images import Limits, decode
from argus.manifest import ModelPackage, Preprocess
from argus.tasks import load_task_model
from argus.tasks.image_input import OneImageModel, preprocess
from argus.train.data import Example

FEATURES = "features"
BATCH = 16

Progress = Callable[[int, int], None]


def features_width(package: ModelPackage) -> int:
    """The length of the base model's ``features`` vector; BadInput when it has none."""
    for spec in package.manifest.outputs:
        if spec.name == FEATURES and spec.shape:
            return int(spec.shape[-1])
    raise BadInput(
        f"{package.name} has no '{FEATURES}' output to train a head on (a classifier whose "
        "package lists one, such as efficientnet-lite0 pulled by this version of Argus)"
    )


class FeatureCache:
    """Vectors by photo digest, for one base model."""

    def __init__(self, cache_dir: Path, base: ModelPackage) -> None:
        folder = cache_dir / "embeddings"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{base.digest.removeprefix('sha256:')[:32]}.sqlite"
        self.width = features_width(base)
        with closing(self._connect()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (digest TEXT PRIMARY KEY, v BLOB)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get(self, digests: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with closing(self._connect()) as db:
            for start in range(0, len(digests), 500):
                chunk = list(digests[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for digest, blob in db.execute(
                    f"SELECT digest, v FROM vectors WHERE digest IN ({marks})", chunk
                ):
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape == (self.width,):
                        found[digest] = vec
        return found

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [(d, np.asarray(v, np.float32).tobytes()) for d, v in vectors.items()],
            )


def load_rgb(example: Example, min_side: int | None) -> np.ndarray:
    """The photo decoded as serving decodes it (same limits, same reduced-size JPEG decode)."""
    return decode(example.path.read_bytes(), Limits(), min_side, sha256=example.digest).rgb


def embed(
    examples: Sequence[Example],
    base: ModelPackage,
    cache_dir: Path,
    threads: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """(N, width) float32 vectors in the order of ``examples``, and how many were computed
    (the rest came from the cache)."""
    cache = FeatureCache(cache_dir, base)
    have = cache.get([e.digest for e in examples])
    todo = list({e.digest: e for e in examples if e.digest not in have}.values())
    if progress:
        progress(0, len(todo))
    if todo:

        def vectors(model: OneImageModel, rows: list[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(v, np.float32) for v in model.run(rows, [FEATURES])[0]]

        for batch, found in in_batches(base, todo, vectors, threads, progress):
            fresh = {e.digest: v for e, v in zip(batch, found, strict=True)}
            cache.put(fresh)
            have.update(fresh)
    return np.stack([have[e.digest] for e in examples]), len(todo)


def preprocess_photo(example: Example, pre: Preprocess) -> np.ndarray:
    """The photo as the model's input row, decoded and preprocessed as serving does it."""
    return preprocess(load_rgb(example, pre.resize_shorter), pre)


T = TypeVar("T")


def in_batches(
    package: ModelPackage,
    examples: Sequence[Example],
    step: Callable[[OneImageModel, list[np.ndarray]], list[T]],
    threads: int = 0,
    progress: Progress | None = None,
) -> Iterator[tuple[Sequence[Example], list[T]]]:
    """``step`` on the package's model over the photos, a batch at a time, as (the batch,
    what ``step`` gave for it); the model is closed at the end."""
    model = load_task_model(package, threads)
    try:
        if not isinstance(model, OneImageModel):
            raise BadInput(f"{package.name} is a {package.task} model, not a one-image model")
        for start in range(0, len(examples), BATCH):
            batch = examples[start : start + BATCH]
            yield batch, step(model, [preprocess_photo(e, model.pre) for e in batch])
            if progress:
                progress(start + len(batch), len(examples))
    finally:
        model.close()
