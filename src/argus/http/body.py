"""Request bodies read whole, never past a limit: a ``Content-Length`` over it is refused before
a byte is read, and a stream that passes it is cut off as soon as it does."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect
from starlette.types import Message

from argus.errors import BadInput, ClientClosed, TooLarge

#: What a multipart form may add around the image (boundaries, headers, small fields).
MULTIPART_HEADROOM = 64 * 1024


def image_body() -> dict[str, Any]:
    """The OpenAPI request body of a route that takes an image as the raw body or as the
    multipart field ``image``. Whether the bytes are an image Argus reads is for the image
    check to say (400, 413 or 415 with the reason): no schema can."""
    image = {"type": "string", "format": "binary", "minLength": 1}
    binary = {"schema": image}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": binary,
                "image/jpeg": binary,
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"image": image},
                        "required": ["image"],
                    }
                },
            },
        }
    }


async def read_body(request: Request, limit: int, what: str = "the request") -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise TooLarge(f"{what} is {int(length):,} bytes, over the limit of {limit:,} bytes")
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{what} is over the limit of {limit:,} bytes")
            parts.append(chunk)
    except ClientDisconnect as exc:
        raise ClientClosed(f"the client closed the connection after {size:,} bytes") from exc
    return b"".join(parts)


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_form(
    request: Request, limit: int, what: str, *, max_files: int, max_fields: int
) -> FormData:
    """A multipart body read whole, never past ``limit`` plus the form's headroom (so a chunked
    upload with no length is cut off as soon as it passes), then parsed; no part over
    ``limit``. The caller closes the form."""
    body = await read_body(request, limit + MULTIPART_HEADROOM, what)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(
        max_files=max_files, max_fields=max_fields, max_part_size=limit + 1
    )


async def read_upload(request: Request, max_bytes: int) -> tuple[bytes, dict[str, str]]:
    """The image from a raw body or a multipart ``image`` field, with the form's text fields,
    never more than the limit: a multipart body is read whole (up to the limit and the form's
    headroom) before it is parsed, so a chunked upload with no length is cut off as soon as it
    passes the limit."""
    if not is_multipart(request):
        return await read_body(request, max_bytes, "the image"), {}
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + MULTIPART_HEADROOM:
        raise TooLarge(
            f"the request is {int(length):,} bytes, over the image limit of {max_bytes:,} bytes"
        )
    form = await read_form(request, max_bytes, "the request", max_files=1, max_fields=20)
    try:
        part = form.get("image")
        if part is None or isinstance(part, str):
            raise BadInput("the multipart form needs a file field named 'image'")
        data = await part.read()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
    finally:
        await form.close()
    if len(data) > max_bytes:
        raise TooLarge(f"the image is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    return data, fields


async def read_image(request: Request, max_bytes: int) -> bytes:
    """The image of a request (see :func:`read_upload`)."""
    return (await read_upload(request, max_bytes))[0]
