"""``/v1/review…``: images kept for review (keep-uncertain) over REST: list them with the
model's guess, fetch one's bytes, label it (filed into its model's dataset folder on the
server) or discard it. Admin only, like records: kept images are every client's images."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import Field

from argus.http.docs import error_responses
from argus.http.params import StrictBody
from argus.models.versions import NAME_LENGTH, NAME_PATTERN
from argus.review import MAX_LIMIT, REASONS, ReviewStore
from argus.review.dataset import LABEL_PATTERN

router = APIRouter(
    prefix="/v1/review", tags=["review"], responses=error_responses(400, 404, 409)
)

#: A kept image's digest as the store reads it: sha256 hex, or a prefix of 8 or more.
DIGEST_PATTERN = r"^[0-9a-f]{8,64}$"
DIGEST = PathParam(
    ..., description="The image's sha256 (hex), or a unique prefix of at least 8 characters.",
    pattern=DIGEST_PATTERN,
)


class Label(StrictBody):
    # The pattern is published, and applied by the store's label check, which says which part
    # of the rule a label breaks (400) rather than echoing the pattern.
    label: str = Field(..., json_schema_extra={"pattern": LABEL_PATTERN})
    """The image's class: it becomes a folder name, so 1-100 characters, no '/', '\\',
    control characters or leading dot, no space at either end."""


def _store(request: Request) -> ReviewStore:
    store: ReviewStore = request.app.state.core.review
    return store


@router.get("")
async def list_kept(
    request: Request,
    model: str | None = Query(
        None, description="Only this model's images.", pattern=NAME_PATTERN,
        max_length=NAME_LENGTH,
    ),
    reason: Literal["uncertain", "disagreement"] | None = Query(
        None, description=f"One of {', '.join(REASONS)}."
    ),
    labelled: bool | None = Query(
        None, description="true: only labelled images; false: only those still to label."
    ),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    after: str | None = Query(
        None, description="The digest of the last image of the previous page.",
        pattern=DIGEST_PATTERN,
    ),
) -> list[dict[str, Any]]:
    """Kept images, newest first, each with the model's guess (and a label once given)."""
    return await asyncio.to_thread(
        _store(request).items,
        model=model,
        reason=reason,
        labelled=labelled,
        limit=limit,
        after=after,
    )


@router.get("/{digest}")
async def show(request: Request, digest: str = DIGEST) -> dict[str, Any]:
    """One kept image's facts: the model's guess, why it was kept, its label."""
    return await asyncio.to_thread(_store(request).get, digest)


@router.get(
    "/{digest}/image",
    response_class=Response,
    responses={200: {"description": "The image as it was sent.",
                     "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {},
                                 "image/bmp": {}, "image/gif": {}}}},
)
async def image(request: Request, digest: str = DIGEST) -> Response:
    """The kept image's bytes, with their content type."""
    data, kind = await asyncio.to_thread(_store(request).image, digest)
    return Response(data, media_type=kind)


@router.post("/{digest}/label")
async def label(request: Request, body: Label, digest: str = DIGEST) -> dict[str, Any]:
    """Give the image its class: it is filed as ``<label>/<digest>.<ext>`` in its model's
    dataset folder (``ARGUS_HOME/datasets/MODEL``), which ``argus train MODEL`` reads; a new
    label moves it."""
    return await asyncio.to_thread(_store(request).label, digest, body.label)


@router.delete("/{digest}", status_code=204, response_class=Response)
async def discard(request: Request, digest: str = DIGEST) -> Response:
    """Forget a kept image (where a label filed it in a dataset, it stays)."""
    await asyncio.to_thread(_store(request).discard, digest)
    return Response(status_code=204)
