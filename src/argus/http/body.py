"""Request bodies read whole, never past a limit: a ``Content-Length`` over it is refused before
a byte is read, and a stream that passes it is cut off as soon as it does."""

from __future__ import annotations

from fastapi import Request

from argus.errors import BadInput, TooLarge

#: What a multipart form may add around the image (boundaries, headers, small fields).
MULTIPART_HEADROOM = 64 * 1024


async def read_body(request: Request, limit: int, what: str = "the request") -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise TooLarge(f"{what} is {int(length):,} bytes, over the limit of {limit:,} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{what} is over the limit of {limit:,} bytes")
        parts.append(chunk)
    return b"".join(parts)


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_image(request: Request, max_bytes: int) -> bytes:
    """The image from a raw body or a multipart ``image`` field, never more than the limit."""
    if not is_multipart(request):
        return await read_body(request, max_bytes, "the image")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + MULTIPART_HEADROOM:
        raise TooLarge(
            f"the request is {int(length):,} bytes, over the image limit of {max_bytes:,} bytes"
        )
    form = await request.form(max_files=1, max_fields=20, max_part_size=max_bytes + 1)
    part = form.get("image")
    if part is None or isinstance(part, str):
        raise BadInput("the multipart form needs a file field named 'image'")
    return await part.read()
