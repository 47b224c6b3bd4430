"""``who`` over gRPC (``AskOptions.gallery``) on a real server with tokens: names from the
gallery, another app's gallery PERMISSION_DENIED, the raw ``embed`` answer for admins only,
a missing gallery NOT_FOUND and none named INVALID_ARGUMENT."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import grpc
import httpx
import pytest

from argus.generated.v1 import vision_pb2 as v1
from tests.roles import Served, answer_of, chunks, serve, vision_stub

ADMIN = "adm-grpc-who-77aa"
INFER = "inf-grpc-who-1c3e"


@pytest.fixture(scope="module")
def served(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory,
           people_photos: dict[str, bytes]) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("grpc-who") / "home"
    shutil.copytree(pulled_home, home, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    served = serve(home, env={"ARGUS_ADMIN_TOKENS": ADMIN, "ARGUS_INFER_TOKENS": INFER})
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        for path, body in (("/v1/apps/kiosk", None),):
            httpx.post(f"{served.url}{path}", headers=admin, json=body, timeout=30)
        for gallery in ({"name": "staff"}, {"name": "door", "app": "kiosk"}):
            made = httpx.post(f"{served.url}/v1/galleries", headers=admin, json=gallery,
                              timeout=30)
            assert made.status_code == 201, made.text
            done = httpx.post(
                f"{served.url}/v1/galleries/{gallery['name']}/people", headers=admin,
                data={"person": "Barack Obama"},
                files=[("photo", ("o.jpg", people_photos["obama2"], "image/jpeg"))], timeout=120)
            assert done.status_code == 201, done.text
        yield served
    finally:
        served.stop()


def ask(served: Served, question: str, image: bytes, token: str = INFER,
        **options: object) -> v1.Answer:
    channel, stub = vision_stub(served.grpc_target)
    with closing(channel):
        return stub.Ask(chunks(question, image, **options),
                        metadata=[("authorization", f"Bearer {token}")], timeout=120)


def test_who_names_faces_over_grpc(served: Served, people_photos: dict[str, bytes]) -> None:
    answer = answer_of(ask(served, "who", people_photos["obama3"], gallery="staff"))
    assert [f["name"] for f in answer["answer"]["faces"]] == ["Barack Obama"]
    stranger = answer_of(ask(served, "who", people_photos["biden"], gallery="staff"))
    assert [f["name"] for f in stranger["answer"]["faces"]] == [None]
    mine = answer_of(ask(served, "who", people_photos["obama"], gallery="door", app="kiosk"))
    assert "Barack Obama" in [f["name"] for f in mine["answer"]["faces"]]


def test_refusals_carry_the_right_codes(served: Served, people_photos: dict[str, bytes]) -> None:
    cases = [
        ({"gallery": "door", "app": "web"}, "who", INFER, grpc.StatusCode.PERMISSION_DENIED),
        ({"gallery": "ghosts"}, "who", INFER, grpc.StatusCode.NOT_FOUND),
        ({}, "who", INFER, grpc.StatusCode.INVALID_ARGUMENT),
        ({"gallery": "Not A Name"}, "who", INFER, grpc.StatusCode.INVALID_ARGUMENT),
        ({}, "embed", INFER, grpc.StatusCode.PERMISSION_DENIED),
    ]
    for options, question, token, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            ask(served, question, people_photos["obama"], token, **options)
        assert err.value.code() == code, (options, question, err.value.details())
    vectors = answer_of(ask(served, "embed", people_photos["biden"], ADMIN))
    assert len(vectors["answer"]["vectors"]["results"][0]["embedding"]) == 128
