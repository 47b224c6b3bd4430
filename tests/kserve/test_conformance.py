"""KServe v2 conformance: a real `argus serve` driven by the unchanged tritonclient, over HTTP
and gRPC, for every call of the protocol, with tensor and image inputs, JSON and binary.

Values are checked against what Argus computes elsewhere: logits against ONNX Runtime run here
in the test process on the same preprocessed tensors, answers against POST /v1/questions.
"""

from __future__ import annotations

import base64
import json
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from argus.images import Limits, decode
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from argus.tasks.classify import ClassifyFields
from argus.tasks.image_input import preprocess
from tests.roles import Served, serve, triton_http

LABELS = "efficientnet-lite0"
FACES = "mtcnn"
PROTOCOLS = ["http", "grpc"]


@pytest.fixture(scope="module")
def aio(pulled_home: Path) -> Any:
    served = serve(pulled_home)
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def clients(aio: Served) -> Any:
    """One tritonclient per protocol."""
    with triton_http(aio.rest_target) as http, closing(
        grpcclient.InferenceServerClient(aio.grpc_target)
    ) as rpc:
        yield {"http": http, "grpc": rpc}


def module(protocol: str) -> Any:
    return httpclient if protocol == "http" else grpcclient


@pytest.fixture(scope="module")
def classifier(pulled_home: Path) -> tuple[ort.InferenceSession, Any]:
    """ONNX Runtime on the served package's own ONNX file, and the package's preprocessing."""
    from argus.db.engine import make_engine

    settings = Settings(home=pulled_home)
    engine = make_engine(settings.db_url)
    store = PackageStore(settings.packages_dir)
    version = ModelRegistry(engine, store).resolve(LABELS)
    engine.dispose()
    package = store.load(version.digest)
    session = ort.InferenceSession(
        str(package.onnx_files()["model"]), providers=["CPUExecutionProvider"]
    )
    return session, package.fields_as(ClassifyFields).preprocess


def tensors(photos: dict[str, bytes], pre: Any, names: list[str]) -> np.ndarray:
    batch = []
    for name in names:
        image = decode(photos[name], Limits(), pre.resize_shorter)
        batch.append(preprocess(image.rgb, pre))
    return np.stack(batch)


def rest_answer(aio: Served, question: str, data: bytes, **params: str) -> dict[str, Any]:
    response = httpx.post(f"{aio.url}/v1/questions/{question}", content=data, params=params,
                          timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["answer"]
    return answer


def image_input(protocol: str, files: list[bytes]) -> Any:
    tensor = module(protocol).InferInput("image", [len(files)], "BYTES")
    array = np.empty(len(files), dtype=np.object_)
    array[:] = files
    if protocol == "http":
        tensor.set_data_from_numpy(array, binary_data=True)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


def requested(protocol: str, name: str, binary: bool) -> Any:
    if protocol == "http":
        return httpclient.InferRequestedOutput(name, binary_data=binary)
    return grpcclient.InferRequestedOutput(name)


# --- health and metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_live_ready_and_server_metadata(clients: Any, protocol: str) -> None:
    c = clients[protocol]
    assert c.is_server_live() is True
    assert c.is_server_ready() is True
    meta = c.get_server_metadata(as_json=True) if protocol == "grpc" else c.get_server_metadata()
    assert meta["name"] == "argus"
    assert meta["version"]
    assert "binary_tensor_data" in meta["extensions"]


def _shapes(meta: dict[str, Any], kind: str) -> dict[str, tuple[str, list[int]]]:
    # tritonclient.grpc's JSON renders int64 shapes as strings.
    return {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta[kind]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("version", ["", "1"])
def test_model_metadata_gives_input_names_datatypes_and_shapes(
    clients: Any, protocol: str, version: str
) -> None:
    c = clients[protocol]
    kw: dict[str, Any] = {"as_json": True} if protocol == "grpc" else {}
    meta = c.get_model_metadata(LABELS, version, **kw)
    assert meta["name"] == LABELS
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert _shapes(meta, "inputs") == {
        "input": ("FP32", [-1, 3, 224, 224]),
        "image": ("BYTES", [-1]),
    }
    assert _shapes(meta, "outputs") == {
        "logits": ("FP32", [-1, 1000]),
        "features": ("FP32", [-1, 1280]),  # the pooled vector training reads
        "answer": ("BYTES", [-1]),
    }
    faces = c.get_model_metadata(FACES, version, **kw)
    assert _shapes(faces, "inputs") == {"image": ("BYTES", [-1])}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_ready(clients: Any, protocol: str) -> None:
    c = clients[protocol]
    assert c.is_model_ready(LABELS) is True
    assert c.is_model_ready(LABELS, "1") is True
    assert c.is_model_ready(FACES) is True
    if protocol == "http":
        assert c.is_model_ready("no-such-model") is False
    else:
        with pytest.raises(InferenceServerException, match="no model named 'no-such-model'"):
            c.is_model_ready("no-such-model")


# --- inference with the model's own tensors --------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "binary"), [("http", False), ("http", True), ("grpc", True)]
)
def test_infer_with_tensors_matches_onnxruntime(
    clients: Any,
    photos: dict[str, bytes],
    classifier: tuple[ort.InferenceSession, Any],
    protocol: str,
    binary: bool,
) -> None:
    session, pre = classifier
    batch = tensors(photos, pre, ["coffee", "chelsea"])
    expected = session.run(None, {"input": batch})[0]

    mod = module(protocol)
    tensor = mod.InferInput("input", list(batch.shape), "FP32")
    if protocol == "http":
        tensor.set_data_from_numpy(batch, binary_data=binary)
    else:
        tensor.set_data_from_numpy(batch)
    result = clients[protocol].infer(
        LABELS, [tensor], outputs=[requested(protocol, "logits", binary)], request_id="t-1"
    )
    logits = result.as_numpy("logits")
    assert logits.shape == (2, 1000)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert int(logits[0].argmax()) == 967  # espresso
    response = result.get_response(as_json=True) if protocol == "grpc" else result.get_response()
    assert response["model_name"] == LABELS
    assert response["model_version"] == "1"
    assert response["id"] == "t-1"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_with_tensors_on_a_pinned_version(
    clients: Any, photos: dict[str, bytes], classifier: tuple[Any, Any], protocol: str
) -> None:
    batch = tensors(photos, classifier[1], ["rocket"])
    mod = module(protocol)
    tensor = mod.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    c = clients[protocol]
    result = c.infer(LABELS, [tensor], model_version="1")
    assert result.as_numpy("logits").shape == (1, 1000)
    with pytest.raises(InferenceServerException, match="has no version 9"):
        c.infer(LABELS, [tensor], model_version="9")


# --- inference with encoded images -----------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "binary"), [("http", False), ("http", True), ("grpc", True)]
)
def test_infer_with_images_answers_as_the_image_api(
    aio: Served,
    clients: Any, photos: dict[str, bytes], protocol: str, binary: bool
) -> None:
    c = clients[protocol]
    files = [photos["coffee"], photos["flower"]]
    result = c.infer(
        LABELS,
        [image_input(protocol, files)],
        outputs=[requested(protocol, "answer", binary), requested(protocol, "scores", binary)],
        parameters={"top_k": 3},
    )
    answers = [json.loads(item) for item in result.as_numpy("answer")]
    assert answers == [
        rest_answer(aio, "labels", files[0], top_k="3"),
        rest_answer(aio, "labels", files[1], top_k="3"),
    ]
    scores = result.as_numpy("scores")
    assert scores.shape == (2, 1000)
    assert abs(float(scores[0].sum()) - 1.0) < 1e-3  # probabilities
    assert answers[0]["labels"][0]["score"] == pytest.approx(float(scores[0].max()), abs=1e-6)

    faces = c.infer(FACES, [image_input(protocol, [photos["astronaut"]])],
                    outputs=[requested(protocol, "answer", binary)])
    answer = json.loads(faces.as_numpy("answer")[0])
    assert answer == rest_answer(aio, "faces", photos["astronaut"])
    assert len(answer["faces"]) == 1


def test_image_as_base64_in_plain_json(aio: Served, photos: dict[str, bytes]) -> None:
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "parameters": {"content_type": "base64"},
                "data": [base64.b64encode(photos["chelsea"]).decode()],
            }
        ],
        "outputs": [{"name": "answer"}],
        "parameters": {"top_k": 2},
    }
    response = httpx.post(f"{aio.url}/v2/models/{LABELS}/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    (output,) = response.json()["outputs"]
    assert output["name"] == "answer" and output["shape"] == [1]
    assert json.loads(output["data"][0]) == rest_answer(aio, "labels", photos["chelsea"], top_k="2")


# --- mistakes --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mistakes_get_reasons_and_the_server_goes_on(
    clients: Any, photos: dict[str, bytes], protocol: str
) -> None:
    c = clients[protocol]
    mod = module(protocol)
    wrong = mod.InferInput("pixels", [1, 3, 224, 224], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(InferenceServerException, match=r"takes the inputs \['input'\]"):
        c.infer(LABELS, [wrong])
    small = mod.InferInput("input", [1, 3, 100, 100], "FP32")
    small.set_data_from_numpy(np.zeros((1, 3, 100, 100), np.float32))
    with pytest.raises(InferenceServerException, match=r"shape \[1, 3, 100, 100\]"):
        c.infer(LABELS, [small])
    with pytest.raises(InferenceServerException, match="not an image"):
        c.infer(LABELS, [image_input(protocol, [b"plain text, no pixels"])])
    tensor_to_cascade = mod.InferInput("input", [1, 3, 224, 224], "FP32")
    tensor_to_cascade.set_data_from_numpy(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(InferenceServerException, match="takes encoded images"):
        c.infer(FACES, [tensor_to_cascade])
    with pytest.raises(InferenceServerException, match="no model named 'nope'"):
        c.infer("nope", [image_input(protocol, [photos["coffee"]])])
    result = c.infer(LABELS, [image_input(protocol, [photos["coffee"]])])
    assert json.loads(result.as_numpy("answer")[0])["labels"][0]["label"] == "espresso"


def test_rest_statuses(aio: Served, photos: dict[str, bytes]) -> None:
    url = f"{aio.url}/v2/models/{LABELS}/infer"
    assert httpx.post(url, content=b"{not json", timeout=30).status_code == 400
    missing = httpx.post(f"{aio.url}/v2/models/nope/infer", json={"inputs": []}, timeout=30)
    assert missing.status_code == 400  # the request is checked before the model is looked up
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                        "parameters": {"content_type": "base64"},
                        "data": [base64.b64encode(b"GIF89a-not-really").decode()]}]}
    assert httpx.post(url, json=body, timeout=30).status_code == 415
    body["inputs"][0]["data"] = ["%%% not base64 %%%"]
    bad = httpx.post(url, json=body, timeout=30)
    assert bad.status_code == 400 and "base64" in bad.json()["error"]
    unknown = httpx.get(f"{aio.url}/v2/models/nope", timeout=30)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    gone = httpx.get(f"{aio.url}/v2/models/{LABELS}/versions/7/ready", timeout=30)
    assert gone.status_code == 404
