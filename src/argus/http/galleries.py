"""``/v1/galleries…``: face identity galleries over REST (admin scope: the people in a gallery
and every change to it are personal data). Enrolment takes photos (multipart ``photo`` parts)
and stores their faces' embeddings; ``DELETE …/people/{person}`` forgets a person. Every change
takes a ``reason`` the audit trail keeps. Handlers only convert and delegate."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from argus.auth import Tokens, bearer
from argus.contracts import GALLERY_NAME, parse_bool, parse_int
from argus.core import Core
from argus.errors import BadInput, Forbidden, NotFound
from argus.galleries.enrol import MAX_PHOTOS, enrol_photos
from argus.galleries.store import DEFAULT_THRESHOLD, MAX_PERSON, MAX_REASON
from argus.http.body import is_multipart, read_form
from argus.http.docs import error_responses
from argus.http.params import NO_NUL, StrictBody
from argus.models.versions import NAME_LENGTH, NAME_PATTERN

router = APIRouter(prefix="/v1/galleries", tags=["galleries"])

GalleryName = Annotated[
    str, Path(description="A gallery's name.", pattern=GALLERY_NAME.pattern, max_length=100)
]
PersonName = Annotated[
    str,
    Path(description="A person's name as enrolled (URL-encoded).", pattern=NO_NUL,
         min_length=1, max_length=MAX_PERSON),
]
REASON = Query(None, max_length=MAX_REASON, pattern=NO_NUL,
               description="Why (kept in the gallery's audit trail).")


class NewGallery(StrictBody):
    name: str = Field(pattern=GALLERY_NAME.pattern, max_length=100)
    """The gallery's name."""
    app: str | None = Field(None, pattern=NAME_PATTERN, max_length=NAME_LENGTH)
    """Only requests of this application (X-Argus-App) may match faces against it."""
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    """The cosine similarity at or above which a face is named (SFace: 0.363)."""
    reason: str | None = Field(None, max_length=MAX_REASON, pattern=NO_NUL)
    """Why (kept in the audit trail)."""


class NewThreshold(StrictBody):
    threshold: float = Field(ge=0.0, le=1.0)
    """The cosine similarity at or above which a face is named."""
    reason: str | None = Field(None, max_length=MAX_REASON, pattern=NO_NUL)
    """Why (kept in the audit trail)."""


_ENROL_FIELDS = {
    "person": {"type": "string", "minLength": 1, "maxLength": MAX_PERSON, "pattern": NO_NUL,
               "description": "Who the photos show."},
    "photo": {"type": "array", "items": {"type": "string", "format": "binary"},
              "minItems": 1, "maxItems": MAX_PHOTOS,
              "description": "Photos of the person, one face each (or say which with face)."},
    "face": {"type": "integer", "minimum": 0, "maximum": 999,
             "description": "Which face of each photo (0 = the first the answer lists)."},
    "keep_photo": {"type": "boolean", "default": False,
                   "description": "Keep the photos too (by default only embeddings are kept)."},
    "reason": {"type": "string", "maxLength": MAX_REASON, "pattern": NO_NUL,
               "description": "Why (kept in the audit trail)."},
}
ENROL_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "properties": _ENROL_FIELDS,
               "required": ["person", "photo"]}}}}}


def vectors_need_admin(core: Core, question: str, request: Request) -> None:
    """A question that answers embeddings themselves (``embed``) needs an admin token when
    tokens are configured: a face's vector identifies a person, as a name does."""
    tokens: Tokens = request.app.state.tokens
    if not tokens.enabled or not core.answers_raw_vectors(question):
        return
    if tokens.kind(bearer(request.headers.get("authorization"))) != "admin":
        raise Forbidden(
            f"question {question!r} answers face embeddings, which identify people: it needs "
            "an admin token"
        )


def _core(request: Request) -> Core:
    return request.app.state.core


def _actor(request: Request) -> str:
    return f"http:{request.client.host if request.client else '?'}"


async def _change(request: Request, work: Any) -> Any:
    """A gallery change off the event loop; this process then reloads at once (others see
    the generation move within a second)."""
    core = _core(request)

    def run() -> Any:
        result = work()
        core.galleries.refresh(force=True)
        return result

    return await asyncio.to_thread(run)


@router.get("", responses=error_responses())
async def list_galleries(request: Request) -> list[dict[str, Any]]:
    """Every gallery: its app, threshold, people and how many faces each holds."""
    return [g.to_dict() for g in await asyncio.to_thread(_core(request).gallery_store.all)]


@router.post("", status_code=201, responses=error_responses(400, 404, 409))
async def create_gallery(body: NewGallery, request: Request) -> dict[str, Any]:
    """Create a gallery (404 when its app does not exist; 409 when the name is taken)."""
    store = _core(request).gallery_store
    info = await _change(request, lambda: store.create(
        body.name, app=body.app, threshold=body.threshold, actor=_actor(request),
        reason=body.reason))
    return info.to_dict()


@router.get("/{gallery}", responses=error_responses(404))
async def show_gallery(gallery: GalleryName, request: Request) -> dict[str, Any]:
    return (await asyncio.to_thread(_core(request).gallery_store.show, gallery)).to_dict()


@router.delete("/{gallery}", status_code=204, responses=error_responses(404))
async def delete_gallery(gallery: GalleryName, request: Request,
                         reason: str | None = REASON) -> None:
    """Delete the gallery and every face in it (the audit trail stays)."""
    store = _core(request).gallery_store
    await _change(request, lambda: store.delete(gallery, actor=_actor(request), reason=reason))


@router.put("/{gallery}/threshold", responses=error_responses(400, 404))
async def set_threshold(gallery: GalleryName, body: NewThreshold,
                        request: Request) -> dict[str, Any]:
    store = _core(request).gallery_store
    info = await _change(request, lambda: store.set_threshold(
        gallery, body.threshold, actor=_actor(request), reason=body.reason))
    return info.to_dict()


@router.get("/{gallery}/history", responses=error_responses(404))
async def history(gallery: GalleryName, request: Request) -> list[dict[str, Any]]:
    """The gallery's audit trail, newest first: who changed what, when and why (kept after
    the gallery is deleted; 404 for a name that never was a gallery)."""
    events = await asyncio.to_thread(_core(request).gallery_store.history, gallery)
    if not events:
        raise NotFound(f"no gallery named {gallery!r} ever existed here")
    return events


@router.post("/{gallery}/people", status_code=201, openapi_extra=ENROL_BODY,
             responses=error_responses(400, 404, 409, 413, 415, 499))
async def enrol(gallery: GalleryName, request: Request) -> JSONResponse:
    """Enrol a person from photos: each photo's face is found, aligned and embedded, and the
    embeddings are stored (never the photos unless ``keep_photo``); all or nothing."""
    core = _core(request)
    if not is_multipart(request):
        raise BadInput("send multipart/form-data: a 'person' field and 'photo' files")
    await asyncio.to_thread(core.gallery_store.show, gallery)  # 404 before reading photos
    limit = core.settings.max_image_bytes
    form = await read_form(request, limit * 4, "the photos", max_files=MAX_PHOTOS,
                           max_fields=MAX_PHOTOS + 8)
    try:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        uploads = [p for p in form.getlist("photo") if not isinstance(p, str)]
        texts = [p for p in form.getlist("photo") if isinstance(p, str)]
        photos = [(p.filename or f"photo {i}", await p.read()) for i, p in enumerate(uploads)]
        photos += [(f"photo {len(photos) + i}", t.encode()) for i, t in enumerate(texts)]
    finally:
        await form.close()
    person = fields.get("person")
    if not person:
        raise BadInput("say who the photos show: a 'person' field")
    result = await enrol_photos(
        core.ask, core.gallery_store, gallery, person, photos,
        face=parse_int("face", fields.get("face"), 0, 999),
        keep_photo=parse_bool("keep_photo", fields.get("keep_photo", False)),
        actor=_actor(request), reason=fields.get("reason") or None,
    )
    await asyncio.to_thread(core.galleries.refresh, True)
    return JSONResponse(result, status_code=201)


@router.delete("/{gallery}/people/{person}", status_code=204, responses=error_responses(400, 404))
async def forget(gallery: GalleryName, person: PersonName, request: Request,
                 reason: str | None = REASON) -> None:
    """Forget a person: every embedding (and kept photo) of theirs is deleted, audited."""
    store = _core(request).gallery_store
    await _change(request, lambda: store.forget(gallery, person, actor=_actor(request),
                                                reason=reason))
