"""Images kept for review, the data loop's start: answers a model was unsure of (or on which
its canary and production disagreed) keep their image (``keeper``), content-addressed and
bounded by a disk budget (``store``); a person's label files it into the model's dataset folder,
the layout ``argus train NAME --data DIR`` reads (``dataset``)."""

from __future__ import annotations

from argus.review.dataset import (
    Exported,
    ExportItem,
    check_label,
    content_type,
    dataset_file,
    export,
    extension,
)
from argus.review.keeper import EVENTS, Keeper
from argus.review.store import MAX_LIMIT, REASONS, Keep, ReviewStore

__all__ = [
    "EVENTS",
    "MAX_LIMIT",
    "REASONS",
    "ExportItem",
    "Exported",
    "Keep",
    "Keeper",
    "ReviewStore",
    "check_label",
    "content_type",
    "dataset_file",
    "export",
    "extension",
]
