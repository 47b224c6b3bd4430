"""Scoring a registered classifier on labelled photos, the way serving answers them: the
package's own preprocessing, decoded with the serving limits, in the model's own batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from argus.errors import BadInput
from argus.manifest import ModelPackage
from argus.tasks.image_input import OneImageModel
from argus.train.data import Example
from argus.train.features import in_batches
from argus.train.report import score

Progress = Callable[[int, int], None]
COMPACT_OVER = 50
"""Score over the classes that occur (true or guessed) when a model has more than this."""


def predict(
    package: ModelPackage,
    examples: Sequence[Example],
    threads: int = 0,
    progress: Progress | None = None,
) -> np.ndarray:
    """(N, classes) scores of ``package`` on the photos."""
    if package.task != "classify":
        raise BadInput(f"{package.name} is a {package.task} model; only classifiers are scored")

    def scores(model: OneImageModel, rows: list[np.ndarray]) -> list[np.ndarray]:
        return list(model.infer(rows))

    return np.stack([s for _, batch in in_batches(package, examples, scores, threads, progress)
                     for s in batch])


def evaluate(
    package: ModelPackage,
    examples: Sequence[Example],
    threads: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report of ``package`` on ``examples``, whose labels must be among its classes."""
    labels = list(package.labels)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({e.label for e in examples} - set(index))
    if unknown:
        raise BadInput(
            f"{package.name} has no class named {', '.join(unknown[:5])}"
            + (f" (its classes: {', '.join(labels[:10])}{'...' if len(labels) > 10 else ''})")
        )
    probs = predict(package, examples, threads, progress)
    truth = np.array([index[e.label] for e in examples])
    classes: list[str] = labels
    if len(labels) > COMPACT_OVER:
        # Keep the columns that occur; the guess (argmax) is always among them, so no score
        # changes, and the report stays readable for a 1,000-class model.
        keep = sorted(set(truth.tolist()) | set(probs.argmax(1).tolist()))
        remap = {old: new for new, old in enumerate(keep)}
        probs = probs[:, keep]
        truth = np.array([remap[t] for t in truth])
        classes = [labels[k] for k in keep]
    return score(probs, truth.tolist(), classes, [str(e.path) for e in examples])
