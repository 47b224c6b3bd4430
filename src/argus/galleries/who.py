"""The ``who`` step: each face of a graph named by the nearest person of a gallery.

It reads a faces step (boxes, landmarks) and the embedding step that ran on those faces'
aligned crops, one vector per face in the same order, and answers the faces with ``name``
(None: unknown) and ``similarity``. The vectors themselves never reach the answer, so a
prediction record of it holds names and scores only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from argus.errors import BadInput, Conflict
from argus.galleries.matcher import GalleryIndex


def vectors_of(result: Mapping[str, Any], step: str) -> np.ndarray:
    """The per-crop embeddings of an embedding step's result, one row per crop."""
    results = result.get("results")
    if not isinstance(results, list):
        raise Conflict(f"op who needs the embeddings of the faces, but step {step!r} has none")
    rows = []
    for i, item in enumerate(results):
        vector = item.get("embedding") if isinstance(item, Mapping) else None
        if not isinstance(vector, list):
            raise Conflict(f"op who: result {i} of step {step!r} is not an embedding")
        rows.append(vector)
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)


def name_faces(
    faces_result: Mapping[str, Any],
    faces_step: str,
    vectors: np.ndarray,
    gallery: GalleryIndex | None,
    model_digest: str,
) -> dict[str, Any]:
    """The faces of ``faces_result`` with the name and similarity of their nearest person."""
    if gallery is None:
        raise BadInput("question who matches faces against a gallery: name one (gallery=NAME)")
    faces = faces_result.get("faces")
    if not isinstance(faces, list):
        raise Conflict(f"op who needs faces, but step {faces_step!r} answered none")
    if len(faces) != len(vectors):
        raise Conflict(
            f"op who: {len(faces)} faces but {len(vectors)} embeddings; the embedding step must "
            f"run on the aligned crops of step {faces_step!r}"
        )
    matches = gallery.search(vectors, model_digest)
    named = []
    for face, match in zip(faces, matches, strict=True):
        named.append({**face, "name": match.name, "similarity": match.similarity})
    out: dict[str, Any] = {
        "faces": named,
        "gallery": gallery.name,
        "threshold": gallery.threshold,
        "known": sum(1 for m in matches if m.name is not None),
    }
    stale = gallery.stale(model_digest)
    if stale:
        # Enrolled with another version of the embedding model: not comparable, not used.
        out["stale_faces"] = stale
    return out
