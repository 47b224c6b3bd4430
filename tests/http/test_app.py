"""argus.http.app in process: which routes a role serves, the request options the image API
reads, and the fast path (raw bodies) answering exactly as the routed handler (multipart)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from argus.http.app import create_app
from argus.server import ServeOptions, build_parts
from argus.settings import Settings
from tests.http.conftest import APP
from tests.inprocess import AppClient, LoopThread

LABELS = "efficientnet-lite0"


def as_form(data: bytes) -> dict[str, Any]:
    """The same image as a multipart upload (answered by the routed handler, not the fast
    path)."""
    return {"files": {"image": ("photo.jpg", data, "image/jpeg")}}


def test_a_role_without_a_core_serves_kserve_health_and_metrics_only(
    http_home: Path, loop: LoopThread, photos: dict[str, bytes]
) -> None:
    settings = Settings(home=http_home)
    parts = build_parts(ServeOptions(role="model", models=[LABELS]), settings)
    app = create_app(parts.plane, parts.metrics, parts.tokens,
                     max_image_bytes=settings.max_image_bytes)
    client = AppClient(app, loop)
    try:
        assert client.get("/v2").json()["name"] == "argus"
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/metrics").headers["content-type"].startswith("text/plain")
        # No image API, not even through the fast path for raw bodies.
        raw = client.post("/v1/questions/labels", content=photos["coffee"])
        assert (raw.status_code, raw.json()) == (404, {"error": "Not Found"})
        for path in ("/v1/questions", "/v1/models", "/v1/jobs/job_1", "/v1/records"):
            assert client.get(path).status_code == 404, path
        paths = client.get("/openapi.json").json()["paths"]
        assert paths and not [p for p in paths if p.startswith("/v1/")]
    finally:
        client.close()
        loop.run(parts.core.close())


def test_query_options_reach_the_answer(app: AppClient, photos: dict[str, bytes]) -> None:
    two = app.post("/v1/questions/labels", params={"top_k": "2"}, content=photos["coffee"])
    labels = two.json()["answer"]["labels"]
    assert len(labels) == 2 and labels[0]["label"] == "espresso"
    for params in ({"version": "1"}, {"alias": "production"}):
        pinned = app.post("/v1/questions/labels", params=params, content=photos["coffee"])
        assert pinned.status_code == 200, pinned.text
        assert [(m["name"], m["version"]) for m in pinned.json()["models"]] == [(LABELS, 1)]

    plain = app.post("/v1/questions/faces", content=photos["astronaut"]).json()
    assert plain["answer"]["faces"] and "crop_png" not in plain["answer"]["faces"][0]
    cropped = app.post("/v1/questions/faces", params={"crops": "true"},
                       content=photos["astronaut"]).json()
    crop = base64.b64decode(cropped["answer"]["faces"][0]["crop_png"])
    assert crop.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_app_header_wins_over_the_app_parameter(
    app: AppClient, photos: dict[str, bytes]
) -> None:
    def ask(header: str, param: str) -> httpx.Response:
        return app.post("/v1/questions/labels", params={"app": param},
                        headers={"X-Argus-App": header}, content=photos["chelsea"])

    assert ask(APP, "nope").status_code == 200
    refused = ask("nope", APP)
    assert (refused.status_code, refused.json()) == (404, {"error": "no app named 'nope'"})


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"top_k": "0"}, "top_k must be between 1 and 1000, not 0"),
        ({"top_k": "1001"}, "top_k must be between 1 and 1000, not 1001"),
        ({"version": "-1"}, "version must be between 0 and 2147483647, not -1"),
        ({"version": "v2"}, "version must be a whole number, not 'v2'"),
        ({"conf": "1.5"}, "conf must be between 0 and 1, not 1.5"),
        ({"conf": "high"}, "conf must be a number between 0 and 1, not 'high'"),
    ],
    ids=["top_k-0", "top_k-1001", "version-negative", "version-word", "conf-1.5", "conf-word"],
)
def test_bad_options_are_refused_with_the_reason(
    app: AppClient, photos: dict[str, bytes], params: dict[str, str], reason: str
) -> None:
    for how in ({"content": photos["rocket"]}, as_form(photos["rocket"])):
        refused = app.post("/v1/questions/labels", params=params, **how)
        assert (refused.status_code, refused.json()) == (400, {"error": reason})
    assert app.post("/v1/questions/labels", content=photos["rocket"]).status_code == 200


@pytest.mark.parametrize(
    ("question", "make", "status"),
    [
        ("labels", lambda p: p["flower"], 200),
        ("faces", lambda p: p["astronaut"], 200),
        ("riddles", lambda p: p["flower"], 404),
        ("labels", lambda p: b"plain text, no pixels", 415),
        ("labels", lambda p: p["flower"][: len(p["flower"]) // 2], 400),
    ],
    ids=["labels", "faces", "unknown-question", "not-an-image", "truncated"],
)
def test_the_fast_path_answers_as_the_routed_handler(
    app: AppClient, photos: dict[str, bytes], question: str, make: Any, status: int
) -> None:
    data = make(photos)
    fast = app.post(f"/v1/questions/{question}", content=data)
    routed = app.post(f"/v1/questions/{question}", **as_form(data))
    assert fast.status_code == routed.status_code == status, (fast.text, routed.text)
    if status != 200:
        assert fast.json() == routed.json()
        assert set(fast.json()) == {"error"}
        return
    volatile = ("timings_ms", "steps", "cached")
    same = [{k: v for k, v in r.json().items() if k not in volatile} for r in (fast, routed)]
    assert same[0] == same[1]
    assert same[0]["question"] == question


def test_other_methods_and_paths_are_not_taken_for_questions(
    app: AppClient, photos: dict[str, bytes]
) -> None:
    listed = app.get("/v1/questions/labels")
    assert listed.status_code == 405 and listed.headers["allow"] == "OPTIONS, POST"
    assert listed.json() == {"error": "Method Not Allowed"}
    deeper = app.post("/v1/questions/labels/extra", content=photos["coffee"])
    assert (deeper.status_code, deeper.json()) == (404, {"error": "Not Found"})


def test_openapi_documents_the_image_body(app: AppClient) -> None:
    spec = app.get("/openapi.json").json()
    body = spec["paths"]["/v1/questions/{question}"]["post"]["requestBody"]
    assert body["required"] is True
    content = body["content"]
    assert {"application/octet-stream", "image/jpeg", "multipart/form-data"} <= set(content)
    assert content["multipart/form-data"]["schema"]["required"] == ["image"]
