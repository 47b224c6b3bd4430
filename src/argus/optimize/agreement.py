"""How closely a made version answers like its parent on the same held-out inputs.

One comparison per kind of answer, chosen by the task's class (``COMPARISONS``): a classifier's
top-1 agreement, top-5 overlap and score differences; an embedding's cosine similarity; a
detector's boxes matched by class and IoU. Each gives one ``agreement`` figure (0..1) that
``--promote-if-agrees`` is held against, and the details the report shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from argus.optimize.images import Inputs
from argus.tasks.base import TaskModel
from argus.tasks.classify import ClassifyModel
from argus.tasks.detect import DetectModel
from argus.tasks.embed import EmbedModel

BATCH = 16
SHOWN = 10
"""Disagreements listed in the report."""
TOP_K = 5
SAME_VECTOR = 0.99
"""Embeddings at least this cosine-similar count as agreeing."""
MATCH_IOU = 0.5
CLEAR_MARGIN = 0.05
"""A parent answer whose top score leads the second by at least this is a clear one: a tie
flipped by rounding is not the same finding as a clear answer changed."""


def answers(model: TaskModel, held: Inputs, finished: bool,
            progress: Callable[[int], None] | None = None) -> list[Any]:
    """The model's raw outputs (or, ``finished``, its answers) for every held-out input."""
    out: list[Any] = []
    for start in range(0, len(held), BATCH):
        raw = model.infer(held.rows[start : start + BATCH])
        if finished:
            raw = [model.finish(r, img, {}) for r, img in
                   zip(raw, held.images[start : start + BATCH], strict=True)]
        out.extend(raw)
        if progress:
            progress(start + len(raw))
    return out


def _label(labels: Sequence[str], index: int) -> str:
    return labels[index] if index < len(labels) else str(index)


def classify(labels: Sequence[str], a: Sequence[np.ndarray], b: Sequence[np.ndarray],
             names: Sequence[str]) -> dict[str, Any]:
    p, q = np.stack(a).astype(np.float64), np.stack(b).astype(np.float64)
    k = min(TOP_K, p.shape[1])
    top_p, top_q = np.argsort(-p, axis=1)[:, :k], np.argsort(-q, axis=1)[:, :k]
    same = top_p[:, 0] == top_q[:, 0]
    overlap = [len(set(x) & set(y)) / k for x, y in zip(top_p, top_q, strict=True)]
    rows = np.arange(len(p))
    ranked = np.sort(p, axis=1)
    clear = (ranked[:, -1] - ranked[:, -2] >= CLEAR_MARGIN if p.shape[1] > 1
             else np.ones(len(p), dtype=bool))
    wrong = [int(i) for i in np.flatnonzero(~same)]
    return {
        "images": len(p),
        "agreement": round(float(same.mean()), 4),
        "top1_agreement": round(float(same.mean()), 4),
        f"top{k}_overlap": round(float(np.mean(overlap)), 4),
        "clear_images": int(clear.sum()),
        "clear_top1_agreement": round(float(same[clear].mean()), 4) if clear.any() else None,
        "clear_margin": CLEAR_MARGIN,
        "max_score_diff": round(float(np.abs(p - q).max()), 4),
        "mean_top1_score_diff": round(float(np.abs(p[rows, top_p[:, 0]]
                                                   - q[rows, top_p[:, 0]]).mean()), 4),
        "disagreements": [
            {"image": names[i],
             "parent": f"{_label(labels, int(top_p[i, 0]))} ({p[i, top_p[i, 0]]:.3f})",
             "new": f"{_label(labels, int(top_q[i, 0]))} ({q[i, top_q[i, 0]]:.3f})"}
            for i in wrong[:SHOWN]
        ],
    }


def embed(labels: Sequence[str], a: Sequence[np.ndarray], b: Sequence[np.ndarray],
          names: Sequence[str]) -> dict[str, Any]:
    p, q = np.stack(a).astype(np.float64), np.stack(b).astype(np.float64)
    norms = np.linalg.norm(p, axis=1) * np.linalg.norm(q, axis=1)
    cosine = (p * q).sum(axis=1) / np.maximum(norms, 1e-12)
    same = cosine >= SAME_VECTOR
    worst = np.argsort(cosine)[:SHOWN]
    return {
        "images": len(p),
        "agreement": round(float(same.mean()), 4),
        "same_vector_at": SAME_VECTOR,
        "mean_cosine": round(float(cosine.mean()), 5),
        "min_cosine": round(float(cosine.min()), 5),
        "max_value_diff": round(float(np.abs(p - q).max()), 5),
        "disagreements": [{"image": names[i], "cosine": round(float(cosine[i]), 5)}
                          for i in worst if not same[i]],
    }


def iou(x: Sequence[float], y: Sequence[float]) -> float:
    iw = max(0.0, min(x[2], y[2]) - max(x[0], y[0]))
    ih = max(0.0, min(x[3], y[3]) - max(x[1], y[1]))
    inter = iw * ih
    union = (x[2] - x[0]) * (x[3] - x[1]) + (y[2] - y[0]) * (y[3] - y[1]) - inter
    return inter / union if union > 0 else 0.0


def match(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matches (best IoU first) between boxes of the same class that overlap
    by at least ``MATCH_IOU``: (index in a, index in b, IoU)."""
    pairs = sorted(((iou(x["box"], y["box"]), i, j) for i, x in enumerate(a)
                    for j, y in enumerate(b) if x["label"] == y["label"]), reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((i, j, overlap))
    return out


def detect(labels: Sequence[str], a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]],
           names: Sequence[str]) -> dict[str, Any]:
    boxes_a = boxes_b = matched = same_images = 0
    ious: list[float] = []
    score_diffs: list[float] = []
    differ: list[dict[str, Any]] = []
    for name, x, y in zip(names, a, b, strict=True):
        ox, oy = x["objects"], y["objects"]
        pairs = match(ox, oy)
        boxes_a, boxes_b, matched = boxes_a + len(ox), boxes_b + len(oy), matched + len(pairs)
        ious += [o for _, _, o in pairs]
        score_diffs += [abs(ox[i]["score"] - oy[j]["score"]) for i, j, _ in pairs]
        if len(pairs) == len(ox) == len(oy):
            same_images += 1
        elif len(differ) < SHOWN:
            differ.append({"image": name, "parent_boxes": len(ox), "new_boxes": len(oy),
                           "matched": len(pairs)})
    total = boxes_a + boxes_b
    return {
        "images": len(names),
        # Matched boxes over all boxes of either (1.0 when both find nothing anywhere).
        "agreement": round(2 * matched / total, 4) if total else 1.0,
        "same_boxes_images": round(same_images / len(names), 4) if names else 1.0,
        "parent_boxes": boxes_a,
        "new_boxes": boxes_b,
        "matched_boxes": matched,
        "match_iou": MATCH_IOU,
        "mean_iou": round(float(np.mean(ious)), 4) if ious else None,
        "max_score_diff": round(float(max(score_diffs)), 4) if score_diffs else None,
        "disagreements": differ,
    }


@dataclass(frozen=True)
class Comparison:
    finished: bool
    """Compare answers (a detector's boxes on the image) rather than raw outputs."""
    compare: Callable[..., dict[str, Any]]
    """(class names, the parent's answers, the new version's, image names) → the figures."""
    measure: str
    """What ``agreement`` means, for the report and the refusal."""


COMPARISONS: dict[type[TaskModel], Comparison] = {
    ClassifyModel: Comparison(False, classify, "top-1 agreement"),
    EmbedModel: Comparison(False, embed, f"share of embeddings with cosine >= {SAME_VECTOR}"),
    DetectModel: Comparison(True, detect, f"boxes matched (same class, IoU >= {MATCH_IOU})"),
}


def comparison_for(model: TaskModel) -> Comparison | None:
    for kind, comparison in COMPARISONS.items():
        if isinstance(model, kind):
            return comparison
    return None
