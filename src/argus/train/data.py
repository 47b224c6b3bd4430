"""Labelled photos: read from class folders or a CSV, checked, digested and split.

Every file is read once: its sha256 is its identity (duplicates, the embedding cache, leakage
between the training and held-out sets) and the dataset digest is the sha256 over the sorted
``digest label`` lines, so the same photos with the same labels give the same digest wherever
they lie on disk and whatever they are called.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from argus.errors import BadInput, NotFound
from argus.images import Limits, open_image
from argus.review.dataset import check_label

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"})
MIN_PER_CLASS = 2
"""Fewer and a class cannot have both a training and a held-out image."""
FEW_PER_CLASS = 10
"""Fewer is allowed but warned about: the held-out scores are then a few images' worth."""
IMBALANCE_WARN = 5.0
"""Largest class over smallest above this: warned (accuracy then hides the small class)."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Example:
    path: Path
    digest: str
    label: str


@dataclass
class DataChecks:
    """What reading the photos found, said to the user before training."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(path, why), skipped."""
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(path, the path it repeats) with the same label, skipped."""
    conflicting: list[tuple[str, list[str]]] = field(default_factory=list)
    """(path, its labels): one photo under several labels, skipped under all."""
    leaked: list[str] = field(default_factory=list)
    """Held-out paths whose photo is also a training photo, dropped from the held-out set."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "duplicates": [{"path": p, "same_as": q} for p, q in self.duplicates],
            "conflicting": [{"path": p, "labels": ls} for p, ls in self.conflicting],
            "leaked": self.leaked,
            "warnings": self.warnings,
        }


@dataclass
class Dataset:
    examples: list[Example]
    checks: DataChecks

    @property
    def classes(self) -> list[str]:
        return sorted({e.label for e in self.examples})

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.label for e in self.examples).items()))

    @property
    def digest(self) -> str:
        return dataset_digest(self.examples)


def dataset_digest(examples: Iterable[Example]) -> str:
    lines = sorted(f"{e.digest} {e.label}" for e in examples)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def from_folder(root: Path) -> list[tuple[Path, str]]:
    """(path, label) for every image file under ``root/<label>/`` (nested folders included;
    hidden files and folders skipped)."""
    if not root.is_dir():
        raise NotFound(f"{root} is not a folder (expected one subfolder of photos per class)")
    found: list[tuple[Path, str]] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = check_label(sub.name)
        for path in sorted(sub.rglob("*")):
            rel = path.relative_to(sub).parts
            if any(part.startswith(".") for part in rel) or not path.is_file():
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append((path, label))
    if not found:
        raise BadInput(f"{root} has no photos in class subfolders ({root}/<class>/<photo>)")
    return found


def from_csv(csv_path: Path) -> list[tuple[Path, str]]:
    """(path, label) rows of a CSV of ``path,label`` (a header row is allowed; relative paths
    are relative to the CSV's folder)."""
    if not csv_path.is_file():
        raise NotFound(f"no CSV file at {csv_path}")
    found: list[tuple[Path, str]] = []
    with csv_path.open(newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or (n == 1 and [c.strip().lower() for c in row[:2]] == ["path", "label"]):
                continue
            if len(row) < 2:
                raise BadInput(f"{csv_path} line {n}: expected path,label")
            path = Path(row[0].strip())
            found.append((path if path.is_absolute() else csv_path.parent / path,
                          check_label(row[1].strip())))
    if not found:
        raise BadInput(f"{csv_path} lists no photos")
    return found


def read(
    items: Sequence[tuple[Path, str]],
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Digest and header-check every photo; skip (and report) unreadable files, duplicates
    and photos filed under more than one label."""
    limits = limits or Limits()
    checks = DataChecks()
    first: dict[str, Example] = {}
    labels_of: dict[str, set[str]] = {}
    paths_of: dict[str, list[str]] = {}
    for done, (path, label) in enumerate(items, 1):
        try:
            data = path.read_bytes()
            open_image(data, limits)
        except OSError as exc:
            checks.unreadable.append((str(path), exc.strerror or str(exc)))
            continue
        except Exception as exc:  # ArgusError from the image checks: the reason says why
            checks.unreadable.append((str(path), str(exc)))
            continue
        finally:
            if progress:
                progress(done, len(items))
        digest = hashlib.sha256(data).hexdigest()
        labels_of.setdefault(digest, set()).add(label)
        paths_of.setdefault(digest, []).append(str(path))
        if digest in first:
            if first[digest].label == label:
                checks.duplicates.append((str(path), str(first[digest].path)))
            continue
        first[digest] = Example(path, digest, label)
    examples = []
    for digest, example in first.items():
        if len(labels_of[digest]) > 1:
            for p in paths_of[digest]:
                checks.conflicting.append((p, sorted(labels_of[digest])))
            continue
        examples.append(example)
    dataset = Dataset(sorted(examples, key=lambda e: (e.label, e.digest)), checks)
    _check_counts(dataset)
    return dataset


def _check_counts(dataset: Dataset) -> None:
    counts = dataset.counts()
    if len(counts) < 2:
        raise BadInput(
            f"training needs at least two classes; found {len(counts)}"
            + (f" ({', '.join(counts)})" if counts else "")
        )
    few = {c: n for c, n in counts.items() if n < MIN_PER_CLASS}
    if few:
        raise BadInput(
            "every class needs at least 2 readable, distinct photos (one to train on, one to "
            f"check with); too few: {', '.join(f'{c} ({n})' for c, n in few.items())}"
        )
    small = {c: n for c, n in counts.items() if n < FEW_PER_CLASS}
    if small:
        dataset.checks.warnings.append(
            f"classes with fewer than {FEW_PER_CLASS} photos (scores on them are rough): "
            + ", ".join(f"{c} ({n})" for c, n in small.items())
        )
    ratio = max(counts.values()) / min(counts.values())
    if ratio > IMBALANCE_WARN:
        big = max(counts, key=lambda c: counts[c])
        tiny = min(counts, key=lambda c: counts[c])
        dataset.checks.warnings.append(
            f"imbalanced: {big} has {counts[big]} photos, {tiny} {counts[tiny]} "
            f"({ratio:.0f}x); look at per-class recall, not accuracy alone"
        )


def split(dataset: Dataset, val: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Stratified: ``val`` of each class held out (at least one photo, at least one kept),
    chosen by ``seed`` from the photos in digest order, so the split depends only on the
    photos, their labels and the seed."""
    if not 0 < val < 1:
        raise BadInput(f"--val must be a fraction between 0 and 1, not {val}")
    rng = np.random.default_rng(seed)
    train: list[Example] = []
    held: list[Example] = []
    for label in dataset.classes:
        members = sorted((e for e in dataset.examples if e.label == label), key=lambda e: e.digest)
        order = rng.permutation(len(members))
        n_held = min(len(members) - 1, max(1, round(val * len(members))))
        held += [members[i] for i in order[:n_held]]
        train += [members[i] for i in order[n_held:]]
    return train, held


def drop_leaked(train: Sequence[Example], held: Dataset) -> list[Example]:
    """The held-out photos that are not also training photos (recorded in ``held.checks``)."""
    seen = {e.digest for e in train}
    kept = []
    for e in held.examples:
        if e.digest in seen:
            held.checks.leaked.append(str(e.path))
        else:
            kept.append(e)
    if not kept:
        raise BadInput("every held-out photo is also a training photo; nothing is left to score")
    return kept
