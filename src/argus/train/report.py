"""How well a classifier does on labelled photos it did not train on: accuracy, macro-F1,
per-class precision/recall/F1/support, the confusion matrix, a recommended confidence
threshold and the worst mistakes; and the two pictures (confusion matrix, training curves).

The same function scores a freshly trained head, a fine-tuned network and any registered
version (``argus evaluate``, ``--promote-if-better``), so the numbers compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from argus.images import png_bytes

TARGET_PRECISION = 0.95
"""The recommended threshold is the lowest top score at which answers are this precise."""
WORST = 10


def score(
    probs: np.ndarray, truth: Sequence[int], classes: Sequence[str], paths: Sequence[str]
) -> dict[str, Any]:
    """The report of ``probs`` (N, classes) against the true class indexes."""
    y = np.asarray(truth, dtype=np.int64)
    guess = probs.argmax(axis=1)
    top = probs.max(axis=1)
    n_cls = len(classes)
    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    np.add.at(confusion, (y, guess), 1)
    per_class = []
    f1s = []
    for i, label in enumerate(classes):
        tp = int(confusion[i, i])
        predicted = int(confusion[:, i].sum())
        support = int(confusion[i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if support:
            f1s.append(f1)
        per_class.append(
            {
                "label": label,
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "support": support,
            }
        )
    wrong = np.flatnonzero(guess != y)
    worst = [int(i) for i in sorted(wrong, key=lambda i: -float(top[i]))[:WORST]]
    return {
        "images": len(y),
        "accuracy": round(float(np.mean(guess == y)), 4) if len(y) else 0.0,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "per_class": per_class,
        "classes": list(classes),
        "confusion": confusion.tolist(),
        "threshold": recommend_threshold(top, guess == y),
        "worst_mistakes": [
            {
                "path": paths[i],
                "label": classes[int(y[i])],
                "guess": classes[int(guess[i])],
                "score": round(float(top[i]), 4),
            }
            for i in worst
        ],
    }


def recommend_threshold(top: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """The lowest top score above which answers are at least ``TARGET_PRECISION`` right, with
    the share of answers it keeps; None when no threshold gets there."""
    order = np.argsort(-top, kind="stable")
    hits = np.cumsum(correct[order])
    precision = hits / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(precision >= TARGET_PRECISION)
    if not len(order) or not len(ok):
        return {"value": None, "target_precision": TARGET_PRECISION,
                "why": f"no threshold gives {TARGET_PRECISION:.0%} precision on these images"}
    if bool(correct.all()):
        return {"value": None, "target_precision": TARGET_PRECISION,
                "why": f"all {len(order)} held-out answers were right (the lowest top score "
                       f"was {float(top.min()):.4g}); more photos would show where mistakes begin"}
    last = int(ok[-1])
    return {
        "value": round(float(top[order[last]]), 4),
        "target_precision": TARGET_PRECISION,
        "precision": round(float(precision[last]), 4),
        "coverage": round((last + 1) / len(order), 4),
    }


# -- pictures ------------------------------------------------------------------------------

WHITE = (255, 255, 255)
INK = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45,
          color: tuple[int, int, int] = INK) -> None:
    cv2.putText(img, text, org, FONT, scale, color, 1, cv2.LINE_AA)


def confusion_png(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """Rows: true class; columns: the guess (named when the names are short, else numbered
    like the rows). Each cell is shaded by its share of the row and shows its count; the
    diagonal is green, mistakes red (any mistake clearly so, however rare)."""
    m = np.asarray(confusion, dtype=np.int64)
    n = len(classes)
    cell = max(22, min(56, 560 // max(n, 1)))
    short = all(len(c) <= 4 for c in classes)
    heads = [c if short else str(i) for i, c in enumerate(classes)]
    names = [(c if short else f"{i} {c}")[:24] for i, c in enumerate(classes)]
    left = 16 + max(cv2.getTextSize(s, FONT, 0.45, 1)[0][0] for s in names)
    top = 56
    title = "true class (rows) vs guess (columns)"
    width = max(left + n * cell + 16, 16 + cv2.getTextSize(title, FONT, 0.5, 1)[0][0])
    img = np.full((top + n * cell + 16, width, 3), 255, np.uint8)
    _text(img, title, (8, 20), 0.5)
    rows = np.maximum(m.sum(axis=1, keepdims=True), 1)
    for i in range(n):
        _text(img, names[i], (8, top + i * cell + cell // 2 + 5))
        _text(img, heads[i], (left + i * cell + 4, top - 8))
        for j in range(n):
            share = m[i, j] / rows[i, 0]
            if i != j and m[i, j]:
                share = 0.25 + 0.75 * share
            base = np.array((46, 160, 67) if i == j else (211, 47, 47), np.float64)
            colour = tuple(int(v) for v in 255 - share * (255 - base))
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), colour, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), 1)
            if m[i, j] and cell >= 22:
                label = str(int(m[i, j]))
                ink = WHITE if share > 0.5 else INK
                _text(img, label, (x0 + 4, y0 + cell // 2 + 5), 0.4, ink)
    return png_bytes(img)


def curves_png(curves: Mapping[str, Sequence[float]], title: str) -> bytes:
    """One panel per named series (loss, accuracy, ...), each scaled to its own range, with
    the first and last values written beside it."""
    series = {k: list(v) for k, v in curves.items() if len(v) >= 1}
    width, panel = 640, 150
    img = np.full((40 + panel * max(len(series), 1), width, 3), 255, np.uint8)
    _text(img, title, (8, 22), 0.55)
    colours = [(25, 118, 210), (230, 81, 0), (46, 125, 50), (123, 31, 162)]
    for k, (name, values) in enumerate(series.items()):
        y0 = 40 + k * panel
        x0, x1, y1 = 70, width - 20, y0 + panel - 30
        cv2.rectangle(img, (x0, y0), (x1, y1), (210, 210, 210), 1)
        lo, hi = min(values), max(values)
        span = hi - lo or 1.0
        pts = [
            (
                int(x0 + (x1 - x0) * (i / max(len(values) - 1, 1))),
                int(y1 - (y1 - y0) * (v - lo) / span),
            )
            for i, v in enumerate(values)
        ]
        colour = colours[k % len(colours)]
        cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts if len(pts) <= 30 else ():
            cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
        _text(img, f"{hi:.3g}", (8, y0 + 12), 0.4)
        _text(img, f"{lo:.3g}", (8, y1), 0.4)
        _text(img, f"{name}: {values[0]:.4g} -> {values[-1]:.4g} ({len(values)} points)",
              (x0, y1 + 18), 0.45, colour)
    return png_bytes(img)
