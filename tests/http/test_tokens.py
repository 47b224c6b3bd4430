"""Tokens against a real server, over REST and gRPC: 401 without a valid token, 403 with the
wrong scope, health and metrics open, real clients pass tokens unchanged, tokens never logged."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from argus.generated import inference_pb2 as pb
from argus.generated import inference_pb2_grpc
from argus.generated.v1 import vision_pb2 as v1
from tests.roles import Served, answer_of, chunks, serve, triton_http, vision_stub

ADMIN = "adm-8f2c41d0e6"
INFER = ("inf-1b9e77c3a2", "inf-5d0a9f4e11")
WRONG = "inf-not-configured-77"


@pytest.fixture(scope="module")
def secured(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("tokens") / "home"
    shutil.copytree(pulled_home, home, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    token_file = home / "admin-tokens"
    token_file.write_text(f"# the admins\n{ADMIN}\n")
    env = {"ARGUS_ADMIN_TOKENS": f"@{token_file}", "ARGUS_INFER_TOKENS": ",".join(INFER)}
    served = serve(home, "--log-level", "debug", env=env)
    try:
        yield served
    finally:
        served.stop()


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def call(served: Served, method: str, path: str, token: str | None = None, **kw: Any
         ) -> httpx.Response:
    return httpx.request(method, f"{served.url}{path}", headers=auth(token), timeout=60, **kw)


def test_health_and_metrics_are_open(secured: Served) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/metrics"):
        assert call(secured, "GET", path).status_code == 200, path


def test_inference_needs_an_inference_or_admin_token(
    secured: Served, photos: dict[str, bytes]
) -> None:
    path = "/v1/questions/labels"
    missing = call(secured, "POST", path, content=photos["coffee"])
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "needs an inference or admin token" in missing.json()["error"]
    wrong = call(secured, "POST", path, WRONG, content=photos["coffee"])
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]
    for token in (*INFER, ADMIN):
        ok = call(secured, "POST", path, token, content=photos["coffee"])
        assert ok.status_code == 200, ok.text
    assert call(secured, "GET", "/v2").status_code == 401
    assert call(secured, "GET", "/v2", INFER[0]).status_code == 200
    assert call(secured, "GET", "/v1/models").status_code == 401
    assert call(secured, "GET", "/v1/models", INFER[1]).status_code == 200


def test_management_needs_an_admin_token(secured: Served) -> None:
    path = "/v1/models/efficientnet-lite0/aliases/canary"
    assert call(secured, "PUT", path, json={"version": 1}).status_code == 401
    forbidden = call(secured, "PUT", path, INFER[0], json={"version": 1})
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "error": "this call needs an admin token; an inference token was given"
    }
    moved = call(secured, "PUT", path, ADMIN, json={"version": 1})
    assert moved.status_code == 200, moved.text
    aliases = call(secured, "GET", "/v1/models/efficientnet-lite0/aliases", INFER[0]).json()
    assert aliases["canary"] == 1


def test_tritonclient_passes_tokens_as_headers(secured: Served, photos: dict[str, bytes]) -> None:
    image = np.array([photos["coffee"]], dtype=np.object_)

    with triton_http(secured.rest_target) as http, closing(
        grpcclient.InferenceServerClient(secured.grpc_target)
    ) as rpc:
        both_clients(http, rpc, image)


def both_clients(http: Any, rpc: Any, image: np.ndarray) -> None:
    tensor = httpclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(image)
    with pytest.raises(InferenceServerException, match="token"):
        http.infer("efficientnet-lite0", [tensor])
    result = http.infer("efficientnet-lite0", [tensor], headers=auth(INFER[0]))
    assert b"espresso" in result.as_numpy("answer")[0]

    assert rpc.is_server_live()  # health is open
    tensor = grpcclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(image)
    with pytest.raises(InferenceServerException, match="token"):
        rpc.infer("efficientnet-lite0", [tensor])
    result = rpc.infer("efficientnet-lite0", [tensor], headers={"authorization": f"Bearer {ADMIN}"})
    assert b"espresso" in result.as_numpy("answer")[0]


def test_grpc_statuses(secured: Served, photos: dict[str, bytes]) -> None:
    with grpc.insecure_channel(secured.grpc_target) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest()).ready
        with pytest.raises(grpc.RpcError) as caught:
            stub.ServerMetadata(pb.ServerMetadataRequest())
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as caught:
            stub.ServerMetadata(pb.ServerMetadataRequest(),
                                metadata=[("authorization", f"Bearer {WRONG}")])
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        meta = stub.ServerMetadata(pb.ServerMetadataRequest(),
                                   metadata=[("authorization", f"Bearer {INFER[1]}")])
        assert meta.name == "argus"

    channel, vision = vision_stub(secured.grpc_target)
    with channel:
        with pytest.raises(grpc.RpcError) as caught:
            vision.Ask(chunks("labels", photos["chelsea"]))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError) as caught:
            list(vision.AskMany(iter([v1.AskRequest(question="labels", image=photos["coffee"])])))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        reply = vision.Ask(chunks("labels", photos["chelsea"]),
                           metadata=[("authorization", f"Bearer {INFER[0]}")])
        assert answer_of(reply)["answer"]["labels"]


def test_tokens_never_reach_the_log(secured: Served, photos: dict[str, bytes]) -> None:
    call(secured, "POST", "/v1/questions/labels", WRONG, content=photos["coffee"])
    call(secured, "POST", "/v1/questions/labels", INFER[0], content=b"not an image")
    call(secured, "PUT", "/v1/models/efficientnet-lite0/aliases/x", INFER[1], json={"version": 1})
    output = secured.proc.output()
    assert output, "the server logged nothing at debug level"
    for token in (ADMIN, *INFER, WRONG):
        assert token not in output
