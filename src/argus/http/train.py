"""``POST /v1/train``: photos in, a training job out (the worker trains; the job carries the
progress, then the report and the new version). The photos are an upload (a zip, or photos with
labels) or, with ``dataset=server``, the model's dataset folder on the server (where labelled
review images are filed), zipped when the job is submitted so the job trains on what was
labelled then. Handlers only convert and delegate."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from argus.contracts import parse_int
from argus.core import Core
from argus.errors import BadInput, NotFound, TooLarge
from argus.http.body import is_multipart, read_form
from argus.http.docs import error_responses
from argus.http.jobs import JOB_QUERY, _queue
from argus.jobs.training import TRAIN_QUESTION, TrainOptions, check_zip, zip_of_labelled
from argus.models.versions import (
    ALIAS_PATTERN,
    NAME_LENGTH,
    NAME_PATTERN,
    parse_ref,
)
from argus.review.dataset import LABEL_PATTERN
from argus.settings import Settings
from argus.train import MODES

# 403 also when a callback's host is not allowed; 401/403 for tokens come from the one pass
# that documents them (http/openapi.py).
router = APIRouter(prefix="/v1", tags=["train"],
                   responses=error_responses(400, 403, 404, 409, 413, 415, 499))

_NAME = NAME_PATTERN[1:-1]
#: The form of ``POST /v1/train``, with the ranges :class:`TrainOptions` holds each field to.
_FIELDS = {
    "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_LENGTH,
             "description": "The model to add a version to (new or not)."},
    "dataset": {"type": "string", "enum": ["server"],
                "description": "server: train on the model's dataset folder on the server "
                "(where labelled review images go) instead of uploaded photos."},
    "zip": {"type": "string", "format": "binary",
            "description": "A zip of class folders: <class>/<photo> (or one folder holding them)."},
    "photo": {"type": "array", "items": {"type": "string", "format": "binary"},
              "description": "Photos, each with a 'label' field in the same order (no zip)."},
    "label": {"type": "array", "items": {"type": "string", "pattern": LABEL_PATTERN}},
    "base": {"type": "string", "default": "efficientnet-lite0", "maxLength": 3 * NAME_LENGTH,
             "pattern": f"^{_NAME}(?::[1-9][0-9]{{0,9}}|@{ALIAS_PATTERN[1:-1]})?$",
             "description": "NAME, NAME:VERSION or NAME@ALIAS of a classifier with a "
                            "features output."},
    "val": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.2},
    "mode": {"type": "string", "enum": list(MODES), "default": "auto"},
    "epochs": {"type": "integer", "minimum": 1, "maximum": 100, "default": 4},
    "image_size": {"type": "integer", "minimum": 64, "maximum": 512, "multipleOf": 32},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0},
    "promote_if_better": {"type": "boolean", "default": False},
    "canary": {"type": "integer", "minimum": 0, "maximum": 100},
    "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
    "idempotency_key": JOB_QUERY["idempotency_key"],
    "callback_url": JOB_QUERY["callback_url"],
}
TRAIN_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "properties": _FIELDS, "required": ["name"]}}}}}
MAX_PHOTOS = 50_000


async def _read_form(request: Request, limit: int) -> tuple[bytes | None, dict[str, str]]:
    """The zip (or the photos and their labels, zipped here; None for ``dataset=server``) and
    the text fields."""
    if not is_multipart(request):
        raise BadInput("send multipart/form-data: a 'zip' of class folders, or 'photo' files "
                       "each with a 'label'", )
    form = await read_form(
        request, limit, "the upload", max_files=MAX_PHOTOS, max_fields=MAX_PHOTOS + 40
    )
    try:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "label"}
        labels = [v for v in form.getlist("label") if isinstance(v, str)]
        zipped = form.get("zip")
        photos = [p for p in form.getlist("photo") if not isinstance(p, str)]
        if fields.get("dataset"):
            if photos or (zipped is not None and not isinstance(zipped, str)):
                raise BadInput("send photos, a 'zip' or dataset=server, not more than one")
            return None, fields
        if zipped is not None:
            if photos:
                raise BadInput("send a 'zip' or 'photo' files, not both")
            if isinstance(zipped, str):  # sent as a text part: its bytes all the same
                return zipped.encode(), fields
            return await zipped.read(), fields
        if not photos:
            raise BadInput("no photos: send a 'zip' of class folders, or 'photo' files each "
                           "with a 'label'")
        if len(labels) != len(photos):
            raise BadInput(f"{len(photos)} 'photo' files but {len(labels)} 'label' fields; "
                           "give one label per photo, in the same order")
        files = [(label, p.filename or "", await p.read()) for label, p in zip(
            labels, photos, strict=True)]
    finally:
        await form.close()
    return await asyncio.to_thread(zip_of_labelled, files), fields


def server_dataset(settings: Settings, which: str, name: str, limit: int) -> bytes:
    """The model's dataset folder on the server as a training zip (``dataset=server``)."""
    from argus.train import data as photos

    if which != "server":
        raise BadInput(f"dataset must be 'server' (the model's dataset folder), not {which!r}")
    folder = settings.dataset_dir(name)
    if not folder.is_dir():
        raise NotFound(f"model {name!r} has no labelled photos on the server yet: label kept "
                       "images first (the page's Review tab, or argus review label)")
    items = photos.from_folder(folder)
    total = sum(path.stat().st_size for path, _ in items)
    if total > limit:
        raise TooLarge(f"the dataset folder of {name!r} holds {total:,} bytes, over the "
                       f"training upload limit of {limit:,} (ARGUS_TRAIN_MAX_UPLOAD_BYTES)")
    return zip_of_labelled([(label, path.name, path.read_bytes()) for path, label in items])


@router.post("/train", status_code=202, openapi_extra=TRAIN_BODY)
async def submit_training(request: Request) -> JSONResponse:
    """Queue a training job: a new version of ``name`` from the photos (the options are the
    ``argus train`` flags). Answers 202 with the job; poll ``GET /v1/jobs/{id}`` for its
    ``progress``, then its ``answer``: the new version, its report and any promotion. With
    ``dataset=server`` (and no photos) it trains on the model's dataset folder on the server."""
    core: Core = request.app.state.core
    limit = core.settings.train_max_upload_bytes
    data, fields = await _read_form(request, limit)
    options = TrainOptions.parse(fields)
    for key in ("priority", "idempotency_key", "callback_url"):
        if fields.get(key) == "":
            raise BadInput(f"{key} is empty: leave it out, or give a value")
    if data is None:
        data = await asyncio.to_thread(
            server_dataset, core.settings, fields["dataset"], options.name, limit
        )
    await asyncio.to_thread(check_zip, data)
    name, version, alias = parse_ref(options.base)
    await asyncio.to_thread(core.registry.resolve, name, version, alias)  # 404 now, not later
    job, created = await asyncio.to_thread(
        lambda: _queue(request).submit(
            TRAIN_QUESTION,
            data,
            options=options.model_dump(),
            priority=parse_int("priority", fields.get("priority"), -1000, 1000) or 0,
            idempotency_key=request.headers.get("idempotency-key")
            or fields.get("idempotency_key"),
            callback_url=fields.get("callback_url") or None,
            max_attempts=2,
        )
    )
    body: dict[str, Any] = {**job.to_dict(), "created": created, "url": f"/v1/jobs/{job.id}"}
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})
