"""/metrics of a real server: request counts by question/model/version/status, latencies,
batch sizes, queue depth, loaded models and their memory, loads; readable by Prometheus."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PULLED
from tests.roles import Served, chunks, serve, vision_stub

LABELS = "efficientnet-lite0"


@pytest.fixture(scope="module")
def observed(pulled_home: Path) -> Iterator[Served]:
    served = serve(pulled_home)
    try:
        yield served
    finally:
        served.stop()


def scrape(served: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{served.url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_follow_what_the_server_did(observed: Served, photos: dict[str, bytes]) -> None:
    before = scrape(observed)
    for model in (LABELS, "mtcnn"):
        assert value(before, "argus_model_loaded", model=model, version="1",
                     digest=_digest(observed, model), runtime="onnxruntime-f32") == 1
        assert value(before, "argus_model_memory_bytes", model=model, version="1") > 0
        assert value(before, "argus_model_queue_depth", model=model, version="1") == 0
    assert value(before, "argus_model_loads_total") == len(PULLED)  # all, loaded at start
    assert value(before, "argus_model_unloads_total") == 0
    assert value(before, "argus_ready") == 1

    names = ["coffee", "chelsea", "rocket", "china", "flower"]
    with concurrent.futures.ThreadPoolExecutor(5) as pool:  # together: some may share a batch
        statuses = list(pool.map(
            lambda name: httpx.post(f"{observed.url}/v1/questions/labels",
                                    content=photos[name], timeout=60).status_code,
            names,
        ))
    assert statuses == [200] * 5
    assert httpx.post(f"{observed.url}/v1/questions/labels", content=b"no image",
                      timeout=60).status_code == 415
    assert httpx.post(f"{observed.url}/v1/questions/faces", content=photos["astronaut"],
                      timeout=60).status_code == 200
    infer = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                         "data": [0.0] * (3 * 224 * 224)}]}
    assert httpx.post(f"{observed.url}/v2/models/{LABELS}/infer", json=infer,
                      timeout=60).status_code == 200
    channel, stub = vision_stub(observed.grpc_target)
    with channel:
        stub.Ask(chunks("labels", photos["astronaut"]), timeout=60)

    after = scrape(observed)
    ok = {"transport": "http", "question": "labels", "model": LABELS, "version": "1",
          "status": "200"}
    assert value(after, "argus_requests_total", **ok) == 5
    assert value(after, "argus_requests_total", transport="http", question="labels", model="",
                 version="", status="415") == 1
    assert value(after, "argus_requests_total", transport="http", question="faces",
                 model="mtcnn", version="1", status="200") == 1
    assert value(after, "argus_requests_total", transport="http", question="", model=LABELS,
                 version="1", status="200") == 1
    assert value(after, "argus_requests_total", transport="grpc", question="labels",
                 model=LABELS, version="1", status="200") == 1
    assert value(after, "argus_request_duration_seconds_count", transport="http",
                 question="labels", status="200") == 5
    assert value(after, "argus_request_duration_seconds_sum", transport="http",
                 question="labels", status="200") > 0
    assert value(after, "argus_model_infer_seconds_count", model=LABELS, version="1") == 6

    # Six images went through the labels batcher (the v2 tensor call runs unbatched).
    batches = value(after, "argus_model_batch_size_count", model=LABELS, version="1")
    assert value(after, "argus_model_batch_size_sum", model=LABELS, version="1") == 6
    assert 1 <= batches <= 6
    assert value(after, "argus_model_batch_size_bucket", model=LABELS, version="1",
                 le="+Inf") == batches
    assert value(after, "argus_model_batch_size_sum", model="mtcnn", version="1") == 1


def _digest(served: Served, model: str) -> str:
    info = httpx.get(f"{served.url}/v1/models/{model}", timeout=30).json()
    digest: str = info["versions"][0]["digest"]
    return digest
