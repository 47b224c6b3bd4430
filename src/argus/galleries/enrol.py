"""Photos to enrolments: each photo's faces embedded by the built-in ``embed`` question (the
same detector, alignment and embedding model ``who`` uses), one face chosen per photo.

A photo must hold exactly one face, or the caller says which (``face``: its index in the
answer's order); a photo without one is refused with the reason, and nothing of a request is
stored unless every photo gave its face.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from argus.contracts import Answer, AskOptions
from argus.errors import BadInput
from argus.galleries.store import Enrolment, GalleryStore

#: The built-in question whose answer holds each face and its embedding.
EMBED_QUESTION = "embed"
MAX_PHOTOS = 20
"""Photos one enrolment may carry (each is a full face-detection run)."""

Ask = Callable[[str, bytes, AskOptions], Awaitable[Answer]]


def pick_face(answer: Answer, label: str, face: int | None) -> tuple[int, np.ndarray, str]:
    """(index, unit vector, embedding model digest) of the chosen face of one photo."""
    faces = (answer.answer.get("faces") or {}).get("faces") or []
    results = (answer.answer.get("vectors") or {}).get("results") or []
    step = answer.steps.get("vectors")
    if not faces:
        raise BadInput(f"{label}: no face was found; enrol with a photo where the face is clear")
    if face is None:
        if len(faces) > 1:
            boxes = "; ".join(f"{i}: box {f['box']}" for i, f in enumerate(faces))
            raise BadInput(
                f"{label} holds {len(faces)} faces; say which with face=N ({boxes})"
            )
        face = 0
    if not 0 <= face < len(faces):
        raise BadInput(f"{label} holds {len(faces)} faces; face={face} is not one of them")
    if step is None or step.model is None or len(results) != len(faces):
        raise BadInput(f"{label}: the faces were not embedded (is sface installed?)")
    vector = np.asarray(results[face]["embedding"], dtype=np.float32)
    return face, vector, step.model.digest


async def enrol_photos(
    ask: Ask,
    store: GalleryStore,
    gallery: str,
    person: str,
    photos: Sequence[tuple[str, bytes]],
    *,
    face: int | None = None,
    keep_photo: bool = False,
    actor: str = "",
    reason: str | None = None,
    source: str = "http",
) -> dict[str, Any]:
    """Embed one face of each photo and store them all as ``person``'s (or none)."""
    if not photos:
        raise BadInput("enrolling needs at least one photo")
    if len(photos) > MAX_PHOTOS:
        raise BadInput(f"at most {MAX_PHOTOS} photos per enrolment, not {len(photos)}")
    # The gallery must exist before any photo is worked on (a typo costs no detection run).
    info = await asyncio.to_thread(store.show, gallery)
    options = AskOptions(app=info.app, source=source)
    faces: list[Enrolment] = []
    for label, data in photos:
        answer = await ask(EMBED_QUESTION, data, options)
        index, vector, digest = pick_face(answer, label, face)
        faces.append(Enrolment(vector, digest, hashlib.sha256(data).hexdigest(), index,
                               data if keep_photo else None))
    return await asyncio.to_thread(
        store.enrol, gallery, person, faces, actor=actor, reason=reason
    )
