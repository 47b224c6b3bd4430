"""End to end: every question through a gateway whose models run in two model services, with
the same answers as all-in-one; one service killed gives a clear 503, restarted it recovers."""

from __future__ import annotations

import io
import json
import time
from contextlib import closing
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from tests.conftest import ServerProcess
from tests.gateway.conftest import FACES, LABELS, Microservices
from tests.roles import answer_of, chunks, comparable, vision_stub


def post(url: str, question: str, data: bytes, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/questions/{question}", content=data, params=params, timeout=120)


def answer(url: str, question: str, data: bytes, **params: str) -> dict[str, Any]:
    response = post(url, question, data, **params)
    assert response.status_code == 200, f"{url} {question}: {response.text}"
    result: dict[str, Any] = response.json()
    return result


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


CASES = [
    ("labels", "coffee", {}),
    ("labels", "chelsea", {"top_k": "3"}),
    ("faces", "astronaut", {}),
    ("faces", "astronaut", {"crops": "true"}),
    ("describe", "astronaut", {"top_k": "2"}),
    ("describe", "rocket", {}),
    (LABELS, "flower", {"top_k": "4"}),
    (FACES, "china", {}),
]


def test_the_gateway_lists_the_questions_all_in_one_lists(
    micro: Microservices, server: ServerProcess
) -> None:
    gateway = httpx.get(f"{micro.gateway.url}/v1/questions", timeout=30).json()
    assert gateway == httpx.get(f"{server.url}/v1/questions", timeout=30).json()
    asked = {question for question, _, _ in CASES}
    available = {q["name"] for q in gateway if q["available"]}
    assert asked <= available
    assert {"labels", "faces", "describe"} <= available


@pytest.mark.parametrize(("question", "photo", "params"), CASES)
def test_every_question_answers_as_all_in_one(
    micro: Microservices,
    server: ServerProcess,
    photos: dict[str, bytes],
    question: str,
    photo: str,
    params: dict[str, str],
) -> None:
    data = photos[photo]
    through_gateway = answer(micro.gateway.url, question, data, **params)
    in_process = answer(server.url, question, data, **params)
    assert comparable(through_gateway) == comparable(in_process)


def test_a_large_png_is_sent_as_a_tensor_and_answers_the_same(
    micro: Microservices, server: ServerProcess, photos: dict[str, bytes]
) -> None:
    # Larger as PNG than the 3x224x224 FP32 tensor (602 KB): the gateway preprocesses it.
    photo = Image.open(io.BytesIO(photos["chelsea"])).resize((1200, 900))
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    assert len(buf.getvalue()) > 3 * 224 * 224 * 4
    through_gateway = answer(micro.gateway.url, "labels", buf.getvalue(), top_k="5")
    assert comparable(through_gateway) == comparable(
        answer(server.url, "labels", buf.getvalue(), top_k="5")
    )


def test_grpc_ask_and_kserve_through_the_gateway(
    micro: Microservices, server: ServerProcess, photos: dict[str, bytes]
) -> None:
    channel, stub = vision_stub(micro.gateway.grpc_target)
    with channel:
        reply = stub.Ask(chunks("faces", photos["astronaut"], size=32_000), timeout=60)
    expected = answer(server.url, "faces", photos["astronaut"])
    assert comparable(answer_of(reply)) == comparable(expected)

    with closing(grpcclient.InferenceServerClient(micro.gateway.grpc_target)) as client:
        kserve_through_the_gateway(client, server, photos)


def kserve_through_the_gateway(client: Any, server: ServerProcess, photos: dict[str, bytes]
                               ) -> None:
    assert client.is_server_ready() and client.is_model_ready(FACES)
    meta = client.get_model_metadata(LABELS, as_json=True)
    assert {t["name"] for t in meta["inputs"]} == {"input", "image"}
    image = grpcclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([photos["coffee"]], dtype=np.object_))
    result = client.infer(LABELS, [image], parameters={"top_k": 2})
    expected = answer(server.url, "labels", photos["coffee"], top_k="2")["answer"]
    assert json.loads(result.as_numpy("answer")[0]) == expected


def test_calls_meeting_the_dead_upstream_are_retried_on_the_live_one(
    micro: Microservices, photos: dict[str, bytes]
) -> None:
    for top_k in range(1, 7):  # new parameters each time: no cached answer hides a call
        body = answer(micro.gateway.url, "labels", photos["rocket"], top_k=str(top_k))
        assert len(body["answer"]["labels"]) == top_k
    url = micro.gateway.url
    assert metric(url, "argus_upstream_up", model=LABELS, address=micro.dead) == 0
    assert metric(url, "argus_upstream_up", model=LABELS, address=micro.labels.grpc_target) == 1


def test_a_model_service_serves_only_its_models(micro: Microservices, photos: dict[str, bytes]
                                               ) -> None:
    image = grpcclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([photos["astronaut"]], dtype=np.object_))
    with closing(grpcclient.InferenceServerClient(micro.labels.grpc_target)) as client, \
            pytest.raises(InferenceServerException, match="serves only efficientnet-lite0"):
        client.infer(FACES, [image])
    assert httpx.get(f"{micro.labels.url}/v1/questions", timeout=30).status_code == 404
    assert metric(micro.labels.url, "argus_model_loaded", model=LABELS, version="1") == 1
    assert httpx.get(f"{micro.labels.url}/v2/health/ready", timeout=30).status_code == 200


def test_a_dead_model_service_gives_a_clear_503_and_recovers_when_restarted(
    micro: Microservices, server: ServerProcess, photos: dict[str, bytes]
) -> None:
    gateway = micro.gateway.url
    address = micro.faces.grpc_target
    micro.faces.stop()

    down = post(gateway, "faces", photos["flower"])  # an image the gateway never cached
    assert down.status_code == 503
    reason = down.json()["error"]
    assert f"no model service for {FACES!r} is up" in reason and address in reason
    assert "connection refused" in reason
    graph = post(gateway, "describe", photos["flower"])
    assert graph.status_code == 503 and FACES in graph.json()["error"]
    assert post(gateway, "labels", photos["flower"]).status_code == 200  # the others go on
    assert httpx.get(f"{gateway}/v2/models/{FACES}/ready", timeout=30).status_code == 503
    assert httpx.get(f"{gateway}/v2/health/ready", timeout=30).status_code == 200

    micro.start_faces()
    deadline = time.monotonic() + 30
    while True:
        back = post(gateway, "faces", photos["flower"])
        if back.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert back.status_code == 200, back.text
    assert comparable(back.json()) == comparable(answer(server.url, "faces", photos["flower"]))
    assert httpx.get(f"{gateway}/v2/models/{FACES}/ready", timeout=30).status_code == 200
