"""The REST API against a real `argus serve` on a loopback port."""

from __future__ import annotations

import io
import zlib

import httpx
import pytest
from PIL import Image

from tests.conftest import ServerProcess
from tests.images.test_decode import png_bomb


def ask(server: ServerProcess, data: bytes, question: str = "labels", **params: str
        ) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/questions/{question}", content=data, params=params,
                      timeout=30)


def test_raw_body_and_multipart_answer_the_same(server: ServerProcess,
                                                photos: dict[str, bytes]) -> None:
    raw = ask(server, photos["coffee"])
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["question"] == "labels"
    assert body["answer"]["labels"][0]["label"] == "espresso"
    assert body["answer"]["labels"][0]["score"] > 0.9
    assert body["models"][0]["name"] == "efficientnet-lite0"
    assert body["models"][0]["version"] == 1
    assert body["image"] == {"sha256": body["image"]["sha256"], "width": 600, "height": 400}
    form = httpx.post(f"{server.url}/v1/questions/labels",
                      files={"image": ("coffee.jpg", photos["coffee"], "image/jpeg")}, timeout=30)
    assert form.status_code == 200, form.text
    assert form.json()["answer"] == body["answer"]
    assert form.json()["image"]["sha256"] == body["image"]["sha256"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("chelsea", {"tiger cat", "Egyptian cat", "tabby"}), ("china", {"palace"}),
     ("flower", {"daisy"})],
)
def test_sample_photos(server: ServerProcess, photos: dict[str, bytes], name: str,
                       expected: set[str]) -> None:
    body = ask(server, photos[name], top_k="2").json()
    assert len(body["answer"]["labels"]) == 2
    assert body["answer"]["labels"][0]["label"] in expected


def test_out_of_range_numbers_are_bad_requests(
    server: ServerProcess, photos: dict[str, bytes]
) -> None:
    for params in ({"version": "99999999999999999999999"}, {"top_k": "1e9"}, {"conf": "-1"}):
        response = ask(server, photos["coffee"], **params)
        assert response.status_code == 400, (params, response.text)
        assert next(iter(params)) in response.json()["error"]
    assert ask(server, photos["coffee"]).status_code == 200  # and it goes on serving


def test_questions_health_and_docs(server: ServerProcess) -> None:
    questions = httpx.get(f"{server.url}/v1/questions").json()
    names = {q["name"]: q for q in questions}
    assert {"labels", "faces", "efficientnet-lite0", "mtcnn"} <= set(names)
    assert names["labels"]["available"] is True
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{server.url}/docs").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/questions/{question}" in spec["paths"]


def truncated(photos: dict[str, bytes]) -> bytes:
    return photos["coffee"][: len(photos["coffee"]) // 3]


def tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="TIFF")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda p: b"", 400, "empty"),
        (lambda p: b"hello, I am text" * 20, 415, "not an image"),
        (truncated, 400, "truncated"),
        (lambda p: b"\x00\x00" + p["coffee"][2:], 415, "not an image"),
        (lambda p: png_bomb(60_000, 60_000), 413, "pixels"),
        (lambda p: tiff(), 415, "TIFF"),
        (lambda p: zlib.compress(b"x" * 1000), 415, "not an image"),
    ],
)
def test_bad_images_get_a_reason_and_the_server_keeps_serving(
    server: ServerProcess, photos: dict[str, bytes], make, status: int, reason: str
) -> None:
    bad = ask(server, make(photos))
    assert bad.status_code == status, bad.text
    assert reason in bad.json()["error"]
    assert ask(server, photos["coffee"]).status_code == 200


def test_unknown_question_version_and_bad_parameters(server: ServerProcess,
                                                     photos: dict[str, bytes]) -> None:
    r = ask(server, photos["coffee"], question="riddles")
    assert r.status_code == 404 and "riddles" in r.json()["error"]
    r = ask(server, photos["coffee"], version="7")
    assert r.status_code == 404 and "no version 7" in r.json()["error"]
    r = ask(server, photos["coffee"], alias="beta")
    assert r.status_code == 404 and "no alias 'beta'" in r.json()["error"]
    r = ask(server, photos["coffee"], top_k="lots")
    assert r.status_code == 400 and "top_k" in r.json()["error"]
    r = httpx.post(f"{server.url}/v1/questions/labels", files={"picture": ("x", b"1")})
    assert r.status_code == 400 and "'image'" in r.json()["error"]
    r = httpx.get(f"{server.url}/v1/nothing-here")
    assert r.status_code == 404 and "error" in r.json()
    assert ask(server, photos["coffee"]).status_code == 200


def test_over_the_byte_limit(pulled_home, photos: dict[str, bytes]) -> None:
    from tests.conftest import start_server

    srv = start_server(pulled_home, env={"ARGUS_MAX_IMAGE_BYTES": "50000"})
    try:
        srv.wait_ready()
        r = httpx.post(f"{srv.url}/v1/questions/labels", content=photos["coffee"], timeout=30)
        assert r.status_code == 413 and "limit" in r.json()["error"]
        small = io.BytesIO()
        Image.open(io.BytesIO(photos["coffee"])).resize((150, 100)).save(small, "JPEG")
        assert httpx.post(f"{srv.url}/v1/questions/labels", content=small.getvalue(),
                          timeout=30).status_code == 200
    finally:
        srv.stop()


def test_models_over_rest(server: ServerProcess) -> None:
    models = httpx.get(f"{server.url}/v1/models").json()
    assert {m["name"] for m in models} == {"efficientnet-lite0", "mtcnn", "blazepose"}
    show = httpx.get(f"{server.url}/v1/models/mtcnn").json()
    assert show["aliases"] == {"production": 1}
    assert httpx.get(f"{server.url}/v1/models/ghost").status_code == 404
    r = httpx.post(f"{server.url}/v1/models/mtcnn/promote", json={"version": 5})
    assert r.status_code == 409 and "no such version" in r.json()["error"]
    r = httpx.post(f"{server.url}/v1/models/mtcnn/promote", json={"version": "x"})
    assert r.status_code == 422 and "version" in r.json()["error"]
