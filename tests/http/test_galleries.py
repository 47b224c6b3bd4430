"""``/v1/galleries…`` and ``?gallery=`` on a real server with tokens: changes and reads need
the admin token, asking ``who`` an inference token of an allowed app, the raw ``embed`` answer
an admin token; enrol by uploading photos, forget by DELETE, every change in the trail."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.roles import Served, serve

ADMIN = "adm-gallery-51c0"
INFER = "inf-gallery-9d24"


@pytest.fixture(scope="module")
def served(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("galleries") / "home"
    shutil.copytree(pulled_home, home, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    served = serve(home, env={"ARGUS_ADMIN_TOKENS": ADMIN, "ARGUS_INFER_TOKENS": INFER})
    try:
        yield served
    finally:
        served.stop()


def call(served: Served, method: str, path: str, token: str | None = ADMIN,
         headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    all_headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    return httpx.request(method, f"{served.url}{path}", headers=all_headers, timeout=120, **kw)


def who(served: Served, image: bytes, gallery: str, token: str = INFER,
        app: str | None = None) -> httpx.Response:
    return call(served, "POST", f"/v1/questions/who?gallery={gallery}", token,
                headers={"X-Argus-App": app} if app else None, content=image)


def enrol(served: Served, gallery: str, person: str, photos: list[bytes],
          **fields: str) -> httpx.Response:
    files = [("photo", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return call(served, "POST", f"/v1/galleries/{gallery}/people",
                data={"person": person, **fields}, files=files)


def test_enrol_recognise_forget_over_rest(
    served: Served, people_photos: dict[str, bytes]
) -> None:
    made = call(served, "POST", "/v1/galleries", json={"name": "staff", "reason": "desk"})
    assert made.status_code == 201, made.text
    assert made.json()["threshold"] == pytest.approx(0.363)
    done = enrol(served, "staff", "Barack Obama", [people_photos["obama2"]], reason="hired")
    assert done.status_code == 201, done.text
    assert done.json()["enrolled"] == 1 and done.json()["photos_kept"] == 0

    answer = who(served, people_photos["obama3"], "staff")
    assert answer.status_code == 200, answer.text
    (face,) = answer.json()["answer"]["faces"]
    assert face["name"] == "Barack Obama" and face["similarity"] > 0.6
    assert "embedding" not in answer.text
    stranger = who(served, people_photos["biden"], "staff").json()
    assert [f["name"] for f in stranger["answer"]["faces"]] == [None]

    shown = call(served, "GET", "/v1/galleries/staff").json()
    assert shown["people"] == [{"name": "Barack Obama", "faces": 1}]
    gone = call(served, "DELETE",
                f"/v1/galleries/staff/people/{quote('Barack Obama')}?reason=asked")
    assert gone.status_code == 204, gone.text
    after = who(served, people_photos["obama3"], "staff").json()
    assert after["answer"]["faces"][0]["name"] is None  # this server forgot at once
    trail = call(served, "GET", "/v1/galleries/staff/history").json()
    assert [e["action"] for e in trail] == ["forget", "enrol", "create"]
    assert trail[0]["detail"]["reason"] == "asked" and trail[0]["actor"].startswith("http:")
    assert trail[1]["detail"]["reason"] == "hired"


def test_galleries_are_admin_only_and_who_needs_an_allowed_app(
    served: Served, people_photos: dict[str, bytes]
) -> None:
    assert call(served, "GET", "/v1/galleries", token=INFER).status_code == 403
    assert call(served, "GET", "/v1/galleries", token=None).status_code == 401
    assert call(served, "POST", "/v1/galleries", token=INFER,
                json={"name": "nope"}).status_code == 403
    assert call(served, "POST", "/v1/apps/kiosk").status_code in (200, 201)
    assert call(served, "POST", "/v1/galleries",
                json={"name": "door", "app": "kiosk", "threshold": 0.4}).status_code == 201
    assert enrol(served, "door", "Barack Obama", [people_photos["obama2"]]).status_code == 201
    mine = who(served, people_photos["obama"], "door", app="kiosk")
    assert mine.status_code == 200 and mine.json()["answer"]["threshold"] == 0.4
    theirs = who(served, people_photos["obama"], "door", app="web")
    assert theirs.status_code == 403 and "belongs to app 'kiosk'" in theirs.json()["error"]
    assert who(served, people_photos["obama"], "door").status_code == 403


def test_the_raw_embedding_answer_needs_an_admin_token(
    served: Served, people_photos: dict[str, bytes]
) -> None:
    refused = call(served, "POST", "/v1/questions/embed", INFER, content=people_photos["biden"])
    assert refused.status_code == 403 and "admin token" in refused.json()["error"]
    answer = call(served, "POST", "/v1/questions/embed", ADMIN, content=people_photos["biden"])
    assert answer.status_code == 200, answer.text
    (vector,) = answer.json()["answer"]["vectors"]["results"]
    assert len(vector["embedding"]) == 128


def test_mistakes_are_clear(served: Served, people_photos: dict[str, bytes],
                            photos: dict[str, bytes]) -> None:
    call(served, "POST", "/v1/galleries", json={"name": "lab"})
    no_face = enrol(served, "lab", "x", [photos["coffee"]])
    assert no_face.status_code == 400 and "no face was found" in no_face.json()["error"]
    assert enrol(served, "ghosts", "x", [people_photos["biden"]]).status_code == 404
    missing = who(served, people_photos["biden"], "ghosts")
    assert missing.status_code == 404 and "no gallery named 'ghosts'" in missing.json()["error"]
    unnamed = call(served, "POST", "/v1/questions/who", INFER, content=people_photos["biden"])
    assert unnamed.status_code == 400 and "gallery=NAME" in unnamed.json()["error"]
    assert call(served, "POST", "/v1/galleries", json={"name": "lab"}).status_code == 409
    bad = call(served, "POST", "/v1/galleries", json={"name": "lab2", "threshold": 2})
    assert bad.status_code == 422
    assert call(served, "DELETE", "/v1/galleries/lab/people/nobody").status_code == 404
    changed = call(served, "PUT", "/v1/galleries/lab/threshold", json={"threshold": 0.5})
    assert changed.status_code == 200 and changed.json()["threshold"] == 0.5
    assert call(served, "DELETE", "/v1/galleries/lab?reason=done").status_code == 204
    assert call(served, "GET", "/v1/galleries/lab").status_code == 404
