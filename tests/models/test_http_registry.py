"""The registry over REST (argus.http.models): numbers out of range, removing aliases,
ending canaries, rollback without a body, apps, and removal refused while a question needs
the version."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from argus.db.engine import make_engine
from argus.models.packages import PackageStore, read_manifest
from argus.models.registry import ModelRegistry
from argus.server import in_process_app
from argus.settings import Settings
from tests.inprocess import AppClient, LoopThread, running_loop
from tests.tiny_model import TINY, register_tiny

HUGE = "99999999999999999999"


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    with running_loop() as running:
        yield running


@pytest.fixture
def client(tmp_path: Path, loop: LoopThread) -> Iterator[AppClient]:
    """The app over a home with the tiny classifier in two versions, 1 in production."""
    settings = Settings(home=tmp_path / "home", preload=False)
    register_tiny(settings, tmp_path / "v1")
    engine = make_engine(settings.db_url)
    try:
        registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
        fields = read_manifest(registry.resolve(TINY).path)
        fields.pop("files")
        (tmp_path / "v1" / "labels.txt").write_text("a\nb\nc\nd\n")  # new labels: version 2
        assert registry.register(TINY, tmp_path / "v1", fields).version.number == 2
    finally:
        engine.dispose()
    app = AppClient(in_process_app(settings), loop)
    try:
        yield app
    finally:
        app.close()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"versions/{HUGE}", None),
        ("DELETE", f"versions/{HUGE}", None),
        ("PUT", "aliases/beta", {"version": int(HUGE)}),
        ("POST", "promote", {"version": int(HUGE)}),
        ("POST", "canary", {"version": int(HUGE), "percent": 5}),
        ("GET", "versions/²", None),
    ],
)
def test_numbers_out_of_range_are_refused_with_the_reason(
    client: AppClient, method: str, path: str, body: object
) -> None:
    refused = client.request(method, f"/v1/models/{TINY}/{path}", json=body)
    assert 400 <= refused.status_code < 500, refused.text
    assert "version" in refused.json()["error"]


def test_rollback_without_a_body_moves_production_back(client: AppClient) -> None:
    client.post(f"/v1/models/{TINY}/promote", json={"version": 2})
    back = client.post(f"/v1/models/{TINY}/rollback")
    assert back.status_code == 200, back.text
    assert back.json()["version"] == 1


def test_alias_and_canary_can_be_removed(client: AppClient) -> None:
    base = f"/v1/models/{TINY}"
    client.put(f"{base}/aliases/beta", json={"version": 2})
    assert client.delete(f"{base}/aliases/beta").status_code == 204
    assert client.get(f"{base}/aliases").json() == {"production": 1}
    assert client.delete(f"{base}/aliases/beta").status_code == 404
    client.post(f"{base}/canary", json={"version": 2, "percent": 100})
    assert client.post(f"/v1/questions/{TINY}", content=_png()).json()["models"][0][
        "version"
    ] == 2
    assert client.delete(f"{base}/canary").status_code == 204
    assert client.get(base).json()["canary_percent"] is None
    assert client.post(f"/v1/questions/{TINY}", content=_png()).json()["models"][0][
        "version"
    ] == 1
    actions = [h["action"] for h in client.get(f"{base}/history").json()]
    assert actions[-3:] == ["delete-alias", "canary", "end-canary"]


def test_apps_over_rest(client: AppClient) -> None:
    assert client.post("/v1/apps/kiosk").status_code == 201
    assert client.post("/v1/apps/kiosk").status_code == 409
    pinned = client.put(f"/v1/apps/kiosk/pins/{TINY}", json={"version": 2})
    assert pinned.status_code == 200, pinned.text
    assert client.put(f"/v1/apps/kiosk/pins/{TINY}", json={"version": int(HUGE)}).status_code \
        in (400, 422)
    asked = client.post(f"/v1/questions/{TINY}?app=kiosk", content=_png()).json()
    assert asked["models"][0]["version"] == 2
    shown = client.get("/v1/apps/kiosk").json()
    assert shown["pins"] == [{"model": TINY, "version": 2, "alias": None}]
    assert [e["action"] for e in shown["history"]] == ["add-app", "pin"]
    assert client.delete(f"/v1/apps/kiosk/pins/{TINY}").status_code == 204
    assert client.get("/v1/apps").json() == [{"name": "kiosk", "pins": []}]
    assert client.delete("/v1/apps/kiosk").status_code == 204
    assert client.get("/v1/apps/kiosk").status_code == 404
    assert client.post(f"/v1/questions/{TINY}?app=kiosk", content=_png()).status_code == 404


def test_removing_what_a_question_needs_is_refused_and_files_go(
    client: AppClient, tmp_path: Path
) -> None:
    core = client.app.state.core
    questions = core.settings.questions_dir
    questions.mkdir(parents=True, exist_ok=True)
    (questions / "gated.yaml").write_text(
        f"question: gated\nsteps:\n  first: {{model: {TINY}}}\nanswer: first\n"
    )
    base = f"/v1/models/{TINY}"
    one = client.get(f"{base}/versions/1").json()
    client.post(f"{base}/promote", json={"version": 2})
    removed = client.delete(f"{base}/versions/1")
    assert removed.status_code == 204, removed.text
    assert not Path(one["path"]).exists()
    assert client.post(f"/v1/questions/{TINY}?version=1", content=_png()).status_code == 404
    client.delete(f"{base}/aliases/production")
    refused = client.delete(f"{base}/versions/2")
    assert refused.status_code == 409
    assert "question gated" in refused.json()["error"]
    listed = {q["name"]: q for q in client.get("/v1/questions").json()}
    assert listed["gated"]["available"] is True
    assert client.post("/v1/questions/gated", content=_png()).status_code == 200
