"""argus.http.body through the image API: an image body is read up to the byte limit and no
further — a declared length over it is refused before a byte is read, a stream without one is
cut off where it passes the limit — raw or as a multipart upload."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from argus.http.body import MULTIPART_HEADROOM
from argus.settings import Settings
from tests.http.conftest import serve_app
from tests.inprocess import AppClient, LoopThread

LIMIT = 50_000
PIECE = 4096


@pytest.fixture(scope="module")
def limited(http_home: Path, loop: LoopThread) -> Iterator[AppClient]:
    client = serve_app(Settings(home=http_home, max_image_bytes=LIMIT), loop)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def exact(photos: dict[str, bytes]) -> bytes:
    """A real JPEG of exactly LIMIT bytes (decoders stop at the end-of-image marker)."""
    photo = photos["chelsea"]
    assert len(photo) < LIMIT
    return photo + b"\0" * (LIMIT - len(photo))


class Upload:
    """A body sent in pieces, without Content-Length unless one is given; counts the bytes the
    app pulled."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), PIECE):
            piece = self.data[start : start + PIECE]
            self.pulled += len(piece)
            yield piece


def multipart(data: bytes) -> tuple[bytes, str]:
    """A multipart body holding ``data`` as the file ``image``, and its content type."""
    request = httpx.Request("POST", "http://argus/", files={"image": ("p.jpg", data, "image/jpeg")})
    return request.read(), request.headers["content-type"]


def test_an_image_of_exactly_the_limit_is_read_one_byte_more_is_not(
    limited: AppClient, exact: bytes
) -> None:
    for how in ({"content": exact}, {"content": Upload(exact)}):
        answered = limited.post("/v1/questions/labels", **how)
        assert answered.status_code == 200, answered.text
        assert answered.json()["image"]["width"] == 451
    declared = limited.post("/v1/questions/labels", content=exact + b"\0")
    assert declared.status_code == 413
    assert declared.json() == {"error": "the image is 50,001 bytes, over the limit of 50,000 bytes"}
    streamed = limited.post("/v1/questions/labels", content=Upload(exact + b"\0"))
    assert streamed.status_code == 413
    assert streamed.json() == {"error": "the image is over the limit of 50,000 bytes"}


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(
    limited: AppClient, exact: bytes
) -> None:
    body = Upload(exact * 20)
    refused = limited.post("/v1/questions/labels", content=body,
                           headers={"Content-Length": str(len(body.data))})
    assert refused.status_code == 413 and "1,000,000 bytes" in refused.json()["error"]
    assert body.pulled == 0


def test_a_stream_is_cut_off_where_it_passes_the_limit(
    limited: AppClient, exact: bytes
) -> None:
    body = Upload(exact * 20)
    refused = limited.post("/v1/questions/labels", content=body)
    assert refused.status_code == 413
    assert LIMIT < body.pulled <= LIMIT + PIECE
    assert limited.post("/v1/questions/labels", content=exact).status_code == 200


def test_multipart_uploads_keep_the_same_limit(limited: AppClient, exact: bytes) -> None:
    def upload(data: bytes) -> httpx.Response:
        return limited.post("/v1/questions/labels",
                            files={"image": ("p.jpg", data, "image/jpeg")})

    assert upload(exact).status_code == 200
    over = upload(exact + b"\0" * 100)  # within the form's headroom: the image is judged
    assert over.status_code == 413
    assert over.json() == {"error": "the image is 50,100 bytes, over the limit of 50,000 bytes"}
    body, content_type = multipart(exact + b"\0" * MULTIPART_HEADROOM)
    sent = Upload(body)
    whole = limited.post("/v1/questions/labels", content=sent,
                         headers={"Content-Type": content_type, "Content-Length": str(len(body))})
    assert whole.status_code == 413
    assert whole.json() == {
        "error": f"the request is {len(body):,} bytes, over the image limit of 50,000 bytes"
    }
    assert sent.pulled == 0


def test_multipart_forms_need_one_file_named_image(
    limited: AppClient, photos: dict[str, bytes]
) -> None:
    as_text = limited.post("/v1/questions/labels", data={"image": "a photo"},
                           files={"other": ("p.jpg", photos["chelsea"], "image/jpeg")})
    assert (as_text.status_code, as_text.json()) == (
        400, {"error": "the multipart form needs a file field named 'image'"}
    )
    two = limited.post("/v1/questions/labels", files=[
        ("image", ("a.jpg", photos["chelsea"], "image/jpeg")),
        ("image", ("b.jpg", photos["chelsea"], "image/jpeg")),
    ])
    assert two.status_code == 400 and "Maximum number of files is 1" in two.json()["error"]


def test_a_multipart_stream_is_cut_off_where_it_passes_the_limit(
    limited: AppClient, photos: dict[str, bytes]
) -> None:
    # A multipart upload without Content-Length (chunked), its image 40x the limit.
    body, content_type = multipart(photos["chelsea"] + b"\0" * (40 * LIMIT))
    sent = Upload(body)
    refused = limited.post("/v1/questions/labels", content=sent,
                           headers={"Content-Type": content_type})
    assert refused.status_code == 413
    # The limit promises the server never holds more than it (and the form's headroom).
    assert sent.pulled <= LIMIT + 64 * 1024 + PIECE, f"read {sent.pulled:,} of {len(body):,}"
