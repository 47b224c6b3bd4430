"""``/v1/review`` in process over a home with the tiny classifier, keeping answers under 0.6:
the kept image listed with the model's guess and its record, its bytes, a label filed into the
model's dataset folder, bad labels (400), unknown digests (404), discarding, the metrics, and
admin tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from argus.settings import Settings
from tests.http.conftest import core_of, flush_records, serve_app
from tests.inprocess import AppClient, LoopThread
from tests.review.images import GREY, RED, image
from tests.tiny_model import TINY, register_tiny

ADMIN, INFER = "admin-secret", "infer-secret"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home", keep_uncertain=0.6, intra_op_threads=1)
    register_tiny(settings, tmp_path / "tiny")
    return settings


@pytest.fixture
def client(settings: Settings, loop: LoopThread) -> Iterator[AppClient]:
    client = serve_app(settings, loop)
    try:
        yield client
    finally:
        client.close()


def kept_after(client: AppClient, data: bytes, **params: str) -> str:
    """Ask the tiny classifier of ``data`` and wait for the keeper; the image's digest."""
    answered = client.post(f"/v1/questions/{TINY}", params=params, content=data)
    assert answered.status_code == 200, answered.text
    client.loop.run(core_of(client).keeper.idle())
    return str(answered.json()["image"]["sha256"])


def test_a_kept_image_is_listed_fetched_labelled_and_discarded(
    client: AppClient, settings: Settings
) -> None:
    jpeg = image((126, 128, 127), fmt="JPEG")
    digest = kept_after(client, jpeg, record="true")
    kept_after(client, RED)  # confident: not kept
    flush_records(client)

    listed = client.get("/v1/review")
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()
    assert (item["digest"], item["model"], item["reason"], item["label"]) == (
        digest, TINY, "uncertain", None)
    assert item["score"] < 0.6 and item["guess"] in ("red", "green", "blue", "grey")
    record = client.get("/v1/records", params={"image": digest}).json()[0]
    assert item["record_id"] == record["id"]

    got = client.get(f"/v1/review/{digest}/image")
    assert got.status_code == 200
    assert got.content == jpeg and got.headers["content-type"] == "image/jpeg"
    assert client.get(f"/v1/review/{digest[:10]}").json()["digest"] == digest

    labelled = client.post(f"/v1/review/{digest}/label", json={"label": "grey"})
    assert labelled.status_code == 200, labelled.text
    filed = settings.home / "datasets" / TINY / "grey" / f"{digest}.jpg"
    assert labelled.json()["filed"] == str(filed)
    assert filed.read_bytes() == jpeg
    assert [i["digest"] for i in client.get("/v1/review?labelled=true").json()] == [digest]
    assert client.get("/v1/review?labelled=false").json() == []

    assert client.delete(f"/v1/review/{digest}").status_code == 204
    assert client.get(f"/v1/review/{digest}").status_code == 404
    assert filed.is_file()  # the dataset keeps what the label filed


def test_bad_labels_and_unknown_digests(client: AppClient) -> None:
    digest = kept_after(client, GREY)
    for bad in ("", "..", ".", "a/b", "a\\b", "tab\there", "x" * 101):
        refused = client.post(f"/v1/review/{digest}/label", json={"label": bad})
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]
    unknown = "0" * 64
    assert client.get(f"/v1/review/{unknown}").status_code == 404
    assert client.get(f"/v1/review/{unknown}/image").status_code == 404
    assert client.post(f"/v1/review/{unknown}/label", json={"label": "cat"}).status_code == 404
    assert client.delete(f"/v1/review/{unknown}").status_code == 404
    # shapes the OpenAPI document rules out are refused before the handler, as everywhere
    assert client.get("/v1/review/not-a-digest").status_code == 422
    assert client.get("/v1/review", params={"reason": "bored"}).status_code == 422
    assert client.get("/v1/review", params={"after": unknown}).status_code == 404
    assert client.post(f"/v1/questions/{TINY}", params={"keep_uncertain": "2"},
                       content=GREY).status_code == 400


def test_metrics_count_what_was_kept(client: AppClient) -> None:
    kept_after(client, GREY)
    kept_after(client, GREY)  # the same image again: kept already
    text = client.get("/metrics").text
    assert 'argus_review_events_total{event="kept"} 1.0' in text
    assert 'argus_review_events_total{event="already"} 1.0' in text
    assert 'argus_review_events_total{event="dropped"} 0.0' in text


def test_review_needs_an_admin_token(settings: Settings, loop: LoopThread) -> None:
    tokened = settings.model_copy(update={"admin_tokens": ADMIN, "infer_tokens": INFER})
    client = serve_app(tokened, loop)
    try:
        answered = client.post(f"/v1/questions/{TINY}", content=GREY,
                               headers={"Authorization": f"Bearer {INFER}"})
        assert answered.status_code == 200
        digest = hashlib.sha256(GREY).hexdigest()
        client.loop.run(core_of(client).keeper.idle())
        for method, path in (("GET", "/v1/review"), ("GET", f"/v1/review/{digest}/image"),
                             ("DELETE", f"/v1/review/{digest}")):
            assert client.request(method, path).status_code == 401
            as_infer = client.request(method, path, headers={"Authorization": f"Bearer {INFER}"})
            assert as_infer.status_code == 403
        as_admin = client.get("/v1/review", headers={"Authorization": f"Bearer {ADMIN}"})
        assert [i["digest"] for i in as_admin.json()] == [digest]
    finally:
        client.close()
