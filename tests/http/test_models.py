"""argus.http.models in process: the registry over REST — reading versions and aliases, moving
aliases (audited with the caller's address), and the status of each kind of refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from argus.db.engine import make_engine
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.server import in_process_app
from argus.settings import Settings
from tests.inprocess import AppClient, LoopThread, copy_home
from tests.tiny_model import TINY, register_tiny


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the tiny classifier in two versions, version 1 in production."""
    work = tmp_path_factory.mktemp("models")
    settings = Settings(home=work / "home")
    register_tiny(settings, work / "v1")
    (work / "v1" / "labels.txt").write_text("rouge\nvert\nbleu\ngris\n")
    engine = make_engine(settings.db_url)
    try:
        registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
        fields: dict[str, Any] = {
            "task": "classify", "model": "model.onnx", "labels": "labels.txt",
            "preprocess": {"resize_shorter": 32, "crop": 32}, "license": "Apache-2.0",
            "source": {"note": "the tiny classifier with French labels"},
        }
        assert registry.register(TINY, work / "v1", fields, actor="tests").version.number == 2
    finally:
        engine.dispose()
    return settings.home


@pytest.fixture
def registry_app(two_versions: Path, tmp_path: Path, loop: LoopThread) -> Iterator[AppClient]:
    """The app over a private copy of ``two_versions`` (models not loaded: none is asked)."""
    home = copy_home(two_versions, tmp_path / "home")
    client = AppClient(in_process_app(Settings(home=home, preload=False)), loop)
    try:
        yield client
    finally:
        client.close()


def test_versions_and_aliases_read_over_rest(registry_app: AppClient) -> None:
    shown = registry_app.get(f"/v1/models/{TINY}").json()
    assert shown["task"] == "classify" and shown["aliases"] == {"production": 1}
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    listed = registry_app.get(f"/v1/models/{TINY}/versions").json()
    assert [v["digest"] for v in listed] == [v["digest"] for v in shown["versions"]]
    second = registry_app.get(f"/v1/models/{TINY}/versions/2").json()
    assert second["version"] == 2 and second["digest"] == listed[1]["digest"] != listed[0]["digest"]
    assert second["aliases"] == [] and listed[0]["aliases"] == ["production"]
    assert registry_app.get(f"/v1/models/{TINY}/aliases").json() == {"production": 1}
    assert registry_app.get(f"/v1/models/{TINY}/versions/9").status_code == 404
    assert registry_app.get(f"/v1/models/{TINY}/versions/two").status_code == 422


def test_alias_moves_answer_the_version_and_are_audited(registry_app: AppClient) -> None:
    base = f"/v1/models/{TINY}"
    moved = registry_app.put(f"{base}/aliases/beta", json={"version": 2})
    assert moved.status_code == 200 and moved.json()["version"] == 2
    promoted = registry_app.post(f"{base}/promote", json={"version": 2})
    assert promoted.json()["aliases"] == ["beta", "production"]  # those at version 2
    canary = registry_app.post(f"{base}/canary", json={"version": 1, "percent": 25})
    assert canary.status_code == 200
    assert registry_app.get(base).json()["canary_percent"] == 25
    back = registry_app.post(f"{base}/rollback", json={})
    assert back.json()["version"] == 1
    assert registry_app.get(f"{base}/aliases").json() == {"beta": 2, "production": 1}
    history = registry_app.get(f"{base}/history").json()
    rest_moves = [(h["action"], h["alias"], h["to_version"]) for h in history
                  if h["actor"].startswith("http:")]
    assert rest_moves == [
        ("alias", "beta", 2), ("promote", "production", 2), ("canary", "canary", 1),
        ("rollback", "production", 1), ("end-canary", "canary", None),
    ]
    assert {h["actor"] for h in history if h["actor"].startswith("http:")} == {"http:127.0.0.1"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("PUT", "aliases/production", {"version": 2, "expected_revision": 99}, 409,
         "was moved by someone else meanwhile"),
        ("PUT", "aliases/beta", {"version": 0}, 422, "version"),
        ("POST", "canary", {"version": 2, "percent": 101}, 422, "percent"),
        ("POST", "promote", {"version": 7}, 409, "no such version"),
        ("POST", "rollback", {"alias": "production"}, 409, "no earlier version"),
        ("DELETE", "versions/1", None, 409, "still the target of alias production"),
    ],
    ids=["stale-revision", "version-0", "percent-101", "missing-version", "no-rollback",
         "delete-production"],
)
def test_refusals_get_their_status_and_reason(
    registry_app: AppClient, method: str, path: str, body: Any, status: int, words: str
) -> None:
    refused = registry_app.request(method, f"/v1/models/{TINY}/{path}", json=body)
    assert refused.status_code == status, refused.text
    assert words in refused.json()["error"]
    assert registry_app.get(f"/v1/models/{TINY}/aliases").json() == {"production": 1}


def test_an_unused_version_can_be_deleted(registry_app: AppClient) -> None:
    deleted = registry_app.delete(f"/v1/models/{TINY}/versions/2")
    assert deleted.status_code == 204 and deleted.content == b""
    assert registry_app.get(f"/v1/models/{TINY}/versions/2").status_code == 404
    assert registry_app.post("/v1/models/ghost/promote", json={"version": 1}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "aliases/beta", {"version": True}, "version"),
        ("PUT", "aliases/beta", {"version": "2"}, "version"),
        ("PUT", "aliases/beta", {"version": 1.5}, "version"),
        ("PUT", "aliases/beta", {"version": 2, "expected_revison": 1}, "expected_revison"),
        ("POST", "canary", {"version": 2, "percent": False}, "percent"),
        ("POST", "promote", {"version": 2, "to": "2024"}, "to"),
        ("PUT", "aliases/2024", {"version": 2}, "alias"),
        ("PUT", "aliases/Beta", {"version": 2}, "alias"),
    ],
    ids=["true", "string", "fraction", "misspelt-field", "false-percent", "numeric-to",
         "numeric-alias", "upper-case-alias"],
)
def test_bodies_and_names_are_taken_as_their_schema_says(
    registry_app: AppClient, method: str, path: str, body: Any, field: str
) -> None:
    """What the OpenAPI document does not allow is refused (422, naming the field), never read
    as something else: ``true`` is not version 1, nor ``"2"`` version 2."""
    refused = registry_app.request(method, f"/v1/models/{TINY}/{path}", json=body)
    assert refused.status_code == 422, refused.text
    assert field in refused.json()["error"]
    assert registry_app.get(f"/v1/models/{TINY}/aliases").json() == {"production": 1}


def test_a_whole_float_is_the_integer_json_schema_says_it_is(registry_app: AppClient) -> None:
    """JSON Schema 2020-12 (OpenAPI 3.1) counts 2.0 as an integer, so the schema's own
    clients may send it; it means version 2, as 2 does."""
    moved = registry_app.put(f"/v1/models/{TINY}/aliases/beta", json={"version": 2.0})
    assert moved.status_code == 200 and moved.json()["version"] == 2


def test_a_pin_is_a_version_or_an_alias_never_both(registry_app: AppClient) -> None:
    assert registry_app.post("/v1/apps/kiosk").status_code == 201
    both = registry_app.put(f"/v1/apps/kiosk/pins/{TINY}", json={"version": 2, "alias": "beta"})
    assert both.status_code == 422
    neither = registry_app.put(f"/v1/apps/kiosk/pins/{TINY}", json={})
    assert neither.status_code == 422
    assert registry_app.get("/v1/apps/kiosk").json()["pins"] == []
    pinned = registry_app.put(f"/v1/apps/kiosk/pins/{TINY}", json={"alias": "production"})
    assert pinned.status_code == 200 and pinned.json()["alias"] == "production"


def test_the_reason_given_for_a_change_is_in_the_history(registry_app: AppClient) -> None:
    """Every change the web page makes carries a reason, and the history shows it."""
    base, pins = f"/v1/models/{TINY}", f"/v1/apps/shop/pins/{TINY}"
    assert registry_app.post("/v1/apps/shop").status_code == 201
    steps = [
        ("POST", f"{base}/promote", {"json": {"version": 2, "reason": "better on shop photos"}}),
        ("POST", f"{base}/canary", {"json": {"version": 1, "percent": 5, "reason": "compare"}}),
        ("DELETE", f"{base}/canary", {"params": {"reason": "enough data"}}),
        ("POST", f"{base}/rollback", {"json": {"reason": "complaints"}}),
        ("PUT", f"{base}/aliases/stable", {"json": {"version": 1, "reason": "a fixed point"}}),
        ("PUT", pins, {"json": {"version": 2, "reason": "the shop wants 2"}}),
        ("DELETE", pins, {"params": {"reason": "the shop is done"}}),
    ]
    for method, path, kw in steps:
        r = registry_app.request(method, path, **kw)
        assert r.status_code in (200, 204), (path, r.text)
    events = registry_app.get(f"{base}/history").json()
    reasons = [(e["action"], e["detail"].get("reason"))
               for e in events if e["actor"].startswith("http:")]
    assert reasons == [
        ("promote", "better on shop photos"),
        ("canary", "compare"),
        ("end-canary", "enough data"),
        ("rollback", "complaints"),
        ("alias", "a fixed point"),
        ("pin", "the shop wants 2"),
        ("unpin", "the shop is done"),
    ]
    assert registry_app.get(f"{base}/aliases").json()["production"] == 1  # rolled back
    shop = registry_app.get("/v1/apps/shop").json()["history"]
    assert [e["detail"].get("reason") for e in shop][-2:] == ["the shop wants 2",
                                                              "the shop is done"]
    # no reason: nothing is added; a blank one is no reason; an over-long one is refused
    blank = registry_app.post(f"{base}/promote", json={"version": 2, "reason": "  "})
    assert blank.status_code == 200
    last = registry_app.get(f"{base}/history").json()[-1]
    assert last["action"] == "promote" and "reason" not in last["detail"]
    long = registry_app.post(f"{base}/promote", json={"version": 2, "reason": "x" * 501})
    assert long.status_code == 422 and "reason" in long.json()["error"]
