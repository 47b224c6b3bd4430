"""The tensor codec against the real tritonclient library, byte for byte.

Requests are built by tritonclient exactly as it would send them (HTTP body + header length,
serialised gRPC ModelInferRequest) and decoded by Argus; responses encoded by Argus are parsed
by tritonclient's own result classes. gRPC messages cross between tritonclient's generated
classes and ours only as serialised bytes, which is what proves wire compatibility.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2 as triton_pb

from argus.errors import BadInput
from argus.generated import inference_pb2 as pb
from argus.generated.v1 import vision_pb2
from argus.kserve import (
    InferRequest,
    InferResponse,
    InferTensor,
    RequestedOutput,
    decode_grpc_request,
    decode_grpc_response,
    decode_rest_request,
    encode_grpc_request,
    encode_grpc_response,
    encode_rest_response,
    select_outputs,
)

ROOT = Path(__file__).resolve().parents[2]

TEXTS = np.array([["coffee", "cat"], ["", "über-λ"]], dtype=np.object_)
RAW_BYTES = np.array([b"\x00\xffjpeg\x00", b"", b"\x89PNG\r\n"], dtype=np.object_)


def sample_tensors() -> dict[str, tuple[str, np.ndarray]]:
    """One tensor per datatype the tests exercise: name -> (datatype, array)."""
    rng = np.random.default_rng(7)
    return {
        "pixels": ("FP32", rng.standard_normal((2, 3, 4)).astype(np.float32)),
        "ids": ("INT64", np.array([[-(2**62), -1, 0, 2**62 + 12345]], dtype=np.int64)),
        "image": ("UINT8", rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)),
        "labels": ("BYTES", TEXTS.copy()),
    }


def http_inputs(binary: dict[str, bool]) -> list[httpclient.InferInput]:
    inputs = []
    for name, (datatype, array) in sample_tensors().items():
        infer_input = httpclient.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array, binary_data=binary[name])
        inputs.append(infer_input)
    return inputs


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    if expected.dtype == np.object_:
        as_bytes = [x if isinstance(x, bytes) else str(x).encode() for x in expected.reshape(-1)]
        assert actual.dtype == np.object_
        assert list(actual.reshape(-1)) == as_bytes
    else:
        assert actual.dtype == expected.dtype
        assert np.array_equal(actual, expected)


# --- schema ----------------------------------------------------------------------------------


def _fields(descriptor: Any) -> dict[str, tuple[int, int, bool, str]]:
    return {
        f.name: (
            f.number,
            f.type,
            f.is_repeated,
            f.message_type.full_name if f.message_type else "",
        )
        for f in descriptor.fields
    }


def _messages(descriptor: Any) -> dict[str, Any]:
    found = {}
    pending = list(descriptor.message_types_by_name.values())
    while pending:
        message = pending.pop()
        found[message.full_name] = message
        pending.extend(message.nested_types)
    return found


def test_inference_proto_matches_tritonclient_field_for_field() -> None:
    ours, theirs = _messages(pb.DESCRIPTOR), _messages(triton_pb.DESCRIPTOR)
    assert len(ours) >= 20
    for name, message in ours.items():
        assert name in theirs, name
        assert _fields(message) == _fields(theirs[name]), name
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    triton_service = triton_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in service.methods:
        twin = triton_service.methods_by_name[method.name]
        assert method.input_type.full_name == twin.input_type.full_name
        assert method.output_type.full_name == twin.output_type.full_name
    assert {m.name for m in service.methods} == {
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    }


@pytest.mark.parametrize(
    "first, second",
    [
        ("argus.generated.inference_pb2", "tritonclient.grpc"),
        ("tritonclient.grpc", "argus.generated.inference_pb2"),
    ],
)
def test_generated_code_imports_next_to_tritonclient_in_either_order(
    first: str, second: str
) -> None:
    program = f"import {first}, {second}; import argus.generated.inference_pb2_grpc"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_generated_code_is_up_to_date_with_the_protos() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vision_chunks_round_trip() -> None:
    first = vision_pb2.ImageChunk(
        header=vision_pb2.AskHeader(
            question="labels",
            options=vision_pb2.AskOptions(app="t", top_k=3, pins={"labels-imagenet": "2"}),
        )
    )
    again = vision_pb2.ImageChunk.FromString(first.SerializeToString())
    assert again.WhichOneof("chunk") == "header"
    assert dict(again.header.options.pins) == {"labels-imagenet": "2"}
    data = vision_pb2.ImageChunk.FromString(
        vision_pb2.ImageChunk(data=b"\xff\xd8").SerializeToString()
    )
    assert data.WhichOneof("chunk") == "data" and data.data == b"\xff\xd8"


# --- REST requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "binary",
    [
        {"pixels": False, "ids": False, "image": False, "labels": False},
        {"pixels": True, "ids": True, "image": True, "labels": True},
        {"pixels": True, "ids": False, "image": True, "labels": False},
    ],
    ids=["json", "binary", "mixed"],
)
def test_rest_request_from_tritonclient_decodes_exactly(binary: dict[str, bool]) -> None:
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        http_inputs(binary),
        outputs=[httpclient.InferRequestedOutput("scores", binary_data=True)],
        request_id="req-1",
        parameters={"app": "tests"},
    )
    assert (header_length is None) == (not any(binary.values()))
    request = decode_rest_request(body, header_length)
    assert [t.name for t in request.inputs] == list(sample_tensors())
    for tensor, (datatype, array) in zip(request.inputs, sample_tensors().values(), strict=True):
        assert tensor.datatype == datatype
        assert tensor.shape == array.shape
        assert "binary_data_size" not in tensor.parameters
        assert_same(tensor.data, array)
    assert request.id == "req-1"
    assert request.parameters == {"app": "tests"}
    assert request.outputs == [RequestedOutput("scores", binary_data=True)]


def test_rest_header_length_may_come_as_the_header_string() -> None:
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        http_inputs(dict.fromkeys(sample_tensors(), True))
    )
    request = decode_rest_request(body, str(header_length))
    assert_same(request.inputs[2].data, sample_tensors()["image"][1])


def test_rest_binary_bytes_keep_nul_and_non_utf8_bytes() -> None:
    infer_input = httpclient.InferInput("blobs", [3], "BYTES")
    infer_input.set_data_from_numpy(RAW_BYTES, binary_data=True)
    body, header_length = httpclient.InferenceServerClient.generate_request_body([infer_input])
    (tensor,) = decode_rest_request(body, header_length).inputs
    assert list(tensor.data) == list(RAW_BYTES)


def test_rest_nested_json_data_is_accepted() -> None:
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}]}
    ).encode()
    (tensor,) = decode_rest_request(body).inputs
    assert tensor.data.dtype == np.int32
    assert tensor.data.tolist() == [[1, 2], [3, 4]]


def test_rest_binary_inputs_are_views_of_the_body_not_copies() -> None:
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        http_inputs(dict.fromkeys(sample_tensors(), True))
    )
    pixels = decode_rest_request(body, header_length).inputs[0].data
    assert not pixels.flags.owndata
    assert not pixels.flags.writeable


def test_requested_output_binary_flags_follow_the_protocol() -> None:
    inputs = http_inputs(dict.fromkeys(sample_tensors(), False))
    # No outputs named: tritonclient asks for every output in binary.
    body, length = httpclient.InferenceServerClient.generate_request_body(inputs)
    request = decode_rest_request(body, length)
    assert request.outputs == [] and request.binary_data_output
    assert request.wants_binary("anything")
    body, length = httpclient.InferenceServerClient.generate_request_body(
        inputs,
        outputs=[
            httpclient.InferRequestedOutput("a", binary_data=False),
            httpclient.InferRequestedOutput("b", binary_data=True, class_count=3),
        ],
    )
    request = decode_rest_request(body, length)
    assert not request.binary_data_output
    assert not request.wants_binary("a")
    assert request.wants_binary("b")
    assert request.outputs[1].parameters == {"classification": 3}


# --- REST responses --------------------------------------------------------------------------


def sample_response() -> InferResponse:
    return InferResponse(
        model_name="labels-imagenet",
        model_version="3",
        id="req-1",
        outputs=[
            InferTensor.from_numpy(name, array) for name, (_, array) in sample_tensors().items()
        ],
    )


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_rest_response_parses_in_tritonclient(binary: bool) -> None:
    request = InferRequest(
        inputs=[],
        outputs=[RequestedOutput(name, binary_data=binary) for name in sample_tensors()],
    )
    body, header_length = encode_rest_response(sample_response(), request)
    assert (header_length is not None) == binary
    result = httpclient.InferResult.from_response_body(body, header_length=header_length)
    for name, (datatype, array) in sample_tensors().items():
        got = result.as_numpy(name)
        assert got is not None, name
        assert result.get_output(name)["datatype"] == datatype
        if datatype == "BYTES":
            # tritonclient gives str from JSON and bytes from binary data.
            expected = [s.encode() for s in array.reshape(-1)]
            assert [g if isinstance(g, bytes) else g.encode() for g in got.reshape(-1)] == expected
            assert got.shape == array.shape
        else:
            assert_same(got, array)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        "labels-imagenet",
        "3",
        "req-1",
    )


def test_rest_response_mixes_json_and_binary_outputs_per_request() -> None:
    inputs = http_inputs(dict.fromkeys(sample_tensors(), False))
    body, length = httpclient.InferenceServerClient.generate_request_body(
        inputs,
        outputs=[
            httpclient.InferRequestedOutput("pixels", binary_data=True),
            httpclient.InferRequestedOutput("labels", binary_data=False),
            httpclient.InferRequestedOutput("image", binary_data=True),
        ],
    )
    request = decode_rest_request(body, length)
    response = sample_response()
    response.outputs = select_outputs(request, response.outputs)
    assert [t.name for t in response.outputs] == ["pixels", "labels", "image"]
    out_body, out_length = encode_rest_response(response, request)
    assert out_length is not None
    header = json.loads(out_body[:out_length])
    assert "data" in header["outputs"][1] and "data" not in header["outputs"][0]
    result = httpclient.InferResult.from_response_body(out_body, header_length=out_length)
    assert_same(result.as_numpy("pixels"), sample_tensors()["pixels"][1])
    assert_same(result.as_numpy("image"), sample_tensors()["image"][1])
    assert list(result.as_numpy("labels").reshape(-1)) == list(TEXTS.reshape(-1))


def test_rest_response_with_raw_bytes_needs_binary_output() -> None:
    response = InferResponse("m", [InferTensor.from_numpy("blobs", RAW_BYTES)])
    with pytest.raises(BadInput, match="binary_data=true"):
        encode_rest_response(response, InferRequest(inputs=[]))
    body, length = encode_rest_response(response, InferRequest(inputs=[], binary_data_output=True))
    result = httpclient.InferResult.from_response_body(body, header_length=length)
    assert list(result.as_numpy("blobs")) == list(RAW_BYTES)


def test_select_outputs_refuses_unknown_names() -> None:
    request = InferRequest(inputs=[], outputs=[RequestedOutput("nope")])
    with pytest.raises(BadInput, match="'nope'"):
        select_outputs(request, sample_response().outputs)


# --- gRPC ------------------------------------------------------------------------------------


def triton_grpc_request() -> triton_pb.ModelInferRequest:
    """The ModelInferRequest tritonclient.grpc sends, built by its own request builder."""
    from tritonclient.grpc._utils import _get_inference_request

    inputs = []
    for name, (datatype, array) in sample_tensors().items():
        infer_input = grpcclient.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    return _get_inference_request(
        model_name="labels-imagenet",
        inputs=inputs,
        model_version="2",
        request_id="req-9",
        outputs=[grpcclient.InferRequestedOutput("scores", class_count=5)],
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        parameters={"app": "tests", "record": True, "top_k": 5},
    )


def test_grpc_request_from_tritonclient_decodes_exactly() -> None:
    wire = triton_grpc_request().SerializeToString()
    request = decode_grpc_request(pb.ModelInferRequest.FromString(wire))
    assert (request.model_name, request.model_version, request.id) == (
        "labels-imagenet",
        "2",
        "req-9",
    )
    assert request.parameters == {"app": "tests", "record": True, "top_k": 5}
    assert request.outputs == [RequestedOutput("scores", parameters={"classification": 5})]
    for tensor, (datatype, array) in zip(request.inputs, sample_tensors().values(), strict=True):
        assert tensor.datatype == datatype
        assert_same(tensor.data, array)


def test_grpc_typed_contents_decode_exactly() -> None:
    message = triton_pb.ModelInferRequest(model_name="m")
    tensors = sample_tensors()
    for name, field in [
        ("pixels", "fp32_contents"),
        ("ids", "int64_contents"),
        ("image", "uint_contents"),
        ("labels", "bytes_contents"),
    ]:
        datatype, array = tensors[name]
        entry = message.inputs.add(name=name, datatype=datatype, shape=array.shape)
        values = (
            [str(v).encode() for v in array.reshape(-1)]
            if datatype == "BYTES"
            else array.reshape(-1).tolist()
        )
        getattr(entry.contents, field).extend(values)
    request = decode_grpc_request(pb.ModelInferRequest.FromString(message.SerializeToString()))
    for tensor, (_, array) in zip(request.inputs, tensors.values(), strict=True):
        assert_same(tensor.data, array)


def test_grpc_response_parses_in_tritonclient() -> None:
    response = sample_response()
    response.parameters = {"cached": True, "queue_ms": 1.5, "batch": 4, "note": "x"}
    wire = encode_grpc_response(response).SerializeToString()
    result = grpcclient.InferResult(triton_pb.ModelInferResponse.FromString(wire))
    for name, (_, array) in sample_tensors().items():
        assert_same(result.as_numpy(name), array)
    message = result.get_response()
    assert (message.model_name, message.model_version, message.id) == (
        "labels-imagenet",
        "3",
        "req-1",
    )
    assert message.parameters["cached"].bool_param is True
    assert message.parameters["queue_ms"].double_param == 1.5
    assert message.parameters["batch"].int64_param == 4
    assert message.parameters["note"].string_param == "x"


def test_grpc_client_side_helpers_round_trip() -> None:
    tensors = [InferTensor.from_numpy(n, a) for n, (_, a) in sample_tensors().items()]
    request = InferRequest(
        inputs=tensors,
        outputs=[RequestedOutput("scores")],
        id="r",
        parameters={"big": 2**63 + 1},
        model_name="m",
        model_version="1",
    )
    wire = encode_grpc_request(request).SerializeToString()
    # What a Triton-compatible server sees:
    assert triton_pb.ModelInferRequest.FromString(wire).parameters["big"].uint64_param == 2**63 + 1
    again = decode_grpc_request(pb.ModelInferRequest.FromString(wire))
    assert again.parameters == {"big": 2**63 + 1}
    for tensor, original in zip(again.inputs, tensors, strict=True):
        assert_same(tensor.data, original.data)
    back = decode_grpc_response(
        pb.ModelInferResponse.FromString(
            encode_grpc_response(sample_response()).SerializeToString()
        )
    )
    for tensor, (_, array) in zip(back.outputs, sample_tensors().values(), strict=True):
        assert_same(tensor.data, array)


def test_fp16_and_bool_travel_raw() -> None:
    halves = np.array([[0.5, -2.0, 65504.0]], dtype=np.float16)
    flags = np.array([True, False, True])
    inputs = []
    for name, array, datatype in [("h", halves, "FP16"), ("f", flags, "BOOL")]:
        infer_input = grpcclient.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    message = triton_pb.ModelInferRequest(model_name="m")
    for infer_input in inputs:
        message.inputs.extend([infer_input._get_tensor()])
        message.raw_input_contents.append(infer_input._get_content())
    request = decode_grpc_request(pb.ModelInferRequest.FromString(message.SerializeToString()))
    assert_same(request.inputs[0].data, halves)
    assert_same(request.inputs[1].data, flags)


# --- bad input -------------------------------------------------------------------------------


def _rest(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _one(**entry: object) -> dict[str, object]:
    return {"inputs": [{"name": "x", **entry}]}


@pytest.mark.parametrize(
    "body, header_length, message",
    [
        (b"{not json", None, "not valid JSON"),
        (b"[]", None, "must be a JSON object"),
        (_rest({"inputs": []}), None, "non-empty 'inputs'"),
        (_rest(_one(datatype="FP8", shape=[1], data=[1])), None, "datatype 'FP8'"),
        (_rest(_one(datatype="FP32", shape=[2, 2], data=[1, 2, 3])), None, "needs 4"),
        (_rest(_one(datatype="FP32", shape=[-1], data=[])), None, "dimensions must be"),
        (_rest(_one(datatype="INT8", shape=[1], data=[300])), None, "outside its range"),
        (_rest(_one(datatype="INT64", shape=[1], data=[1.5])), None, "not INT64 values"),
        (_rest(_one(datatype="BOOL", shape=[1], data=[1])), None, "not BOOL values"),
        (_rest(_one(datatype="BYTES", shape=[1], data=[3])), None, "must be strings"),
        (_rest(_one(datatype="INT32", shape=[2, 2], data=[[1, 2], [3]])), None, "ragged"),
        (
            _rest(_one(datatype="INT32", shape=[3, 2], data=[[1, 2, 3], [4, 5, 6]])),
            None,
            r"not \[3, 2\]",
        ),
        (_rest(_one(datatype="FP32", shape=[1])), None, "neither 'data'"),
        (
            _rest(_one(datatype="FP32", shape=[2], parameters={"binary_data_size": 8})),
            None,
            "no Inference-Header-Content-Length",
        ),
        (b"{}", 99, "the body has 2 bytes"),
        (b"{}", "ten", "not an integer"),
    ],
)
def test_bad_rest_requests_are_refused_with_a_reason(
    body: bytes, header_length: int | str | None, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        decode_rest_request(body, header_length)


def _binary_body(
    array: np.ndarray, datatype: str, cut: int = 0, extra: bytes = b""
) -> tuple[bytes, int]:
    infer_input = httpclient.InferInput("x", list(array.shape), datatype)
    infer_input.set_data_from_numpy(array, binary_data=True)
    body, length = httpclient.InferenceServerClient.generate_request_body([infer_input])
    return (body[: len(body) - cut] if cut else body) + extra, length


def test_truncated_binary_data_is_refused() -> None:
    body, length = _binary_body(np.zeros((2, 2), np.float32), "FP32", cut=3)
    with pytest.raises(BadInput, match="truncated"):
        decode_rest_request(body, length)


def test_trailing_bytes_after_binary_data_are_refused() -> None:
    body, length = _binary_body(np.zeros((2, 2), np.float32), "FP32", extra=b"xx")
    with pytest.raises(BadInput, match="2 bytes after"):
        decode_rest_request(body, length)


def test_binary_size_that_does_not_match_the_shape_is_refused() -> None:
    header = json.dumps(
        _one(datatype="FP32", shape=[3], parameters={"binary_data_size": 8})
    ).encode()
    with pytest.raises(BadInput, match="needs 12 bytes, but 8"):
        decode_rest_request(header + bytes(8), len(header))


def test_truncated_bytes_elements_are_refused() -> None:
    # Declare 3 elements but send the bytes of 2 (a valid buffer for a shorter tensor).
    infer_input = httpclient.InferInput("x", [2], "BYTES")
    infer_input.set_data_from_numpy(RAW_BYTES[:2], binary_data=True)
    body, length = httpclient.InferenceServerClient.generate_request_body([infer_input])
    header = json.loads(body[:length])
    header["inputs"][0]["shape"] = [3]
    new_header = json.dumps(header).encode()
    with pytest.raises(BadInput, match="ends inside the length of element 2"):
        decode_rest_request(new_header + body[length:], len(new_header))


def test_bad_grpc_requests_are_refused_with_a_reason() -> None:
    message = triton_grpc_request()
    del message.raw_input_contents[-1]
    with pytest.raises(BadInput, match="3 raw contents for 4 inputs"):
        decode_grpc_request(pb.ModelInferRequest.FromString(message.SerializeToString()))

    message = triton_grpc_request()
    message.raw_input_contents[0] = message.raw_input_contents[0][:-1]
    with pytest.raises(BadInput, match="'pixels' is FP32 with shape"):
        decode_grpc_request(pb.ModelInferRequest.FromString(message.SerializeToString()))

    typed = pb.ModelInferRequest()
    entry = typed.inputs.add(name="x", datatype="INT8", shape=[2])
    entry.contents.int_contents.extend([1, 200])
    with pytest.raises(BadInput, match="outside the range of INT8"):
        decode_grpc_request(typed)
    entry.contents.int_contents.append(3)
    with pytest.raises(BadInput, match=r"3 values in contents\.int_contents"):
        decode_grpc_request(typed)

    half = pb.ModelInferRequest()
    half.inputs.add(name="h", datatype="FP16", shape=[1])
    with pytest.raises(BadInput, match="only be sent in raw"):
        decode_grpc_request(half)

    unknown = pb.ModelInferRequest()
    unknown.inputs.add(name="u", datatype="BF16", shape=[1])
    unknown.raw_input_contents.append(b"\x00\x00")
    with pytest.raises(BadInput, match="datatype 'BF16'"):
        decode_grpc_request(unknown)


def test_zero_size_tensor_with_absurd_dimensions_is_refused() -> None:
    body = _rest(_one(datatype="FP32", shape=[0, 2**62], data=[]))
    with pytest.raises(BadInput, match="beyond any tensor"):
        decode_rest_request(body)


# --- the unchanged clients against a minimal server built on the codec ----------------------


def echo(request: InferRequest) -> InferResponse:
    """Every input comes back as an output of the same name; FP32 inputs doubled."""
    outputs = [
        InferTensor(t.name, t.datatype, t.shape, t.data * 2 if t.datatype == "FP32" else t.data)
        for t in request.inputs
    ]
    response = InferResponse("echo", outputs, model_version="1", id=request.id)
    response.outputs = select_outputs(request, response.outputs)
    return response


def expected_echo(name: str) -> np.ndarray:
    datatype, array = sample_tensors()[name]
    return array * 2 if datatype == "FP32" else array


@pytest.fixture
def grpc_port() -> Iterator[int]:
    from concurrent import futures

    import grpc

    from argus.generated import inference_pb2_grpc

    class Servicer(inference_pb2_grpc.GRPCInferenceServiceServicer):
        def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
            return pb.ServerLiveResponse(live=True)

        def ModelInfer(self, request: Any, context: Any) -> pb.ModelInferResponse:
            try:
                return encode_grpc_response(echo(decode_grpc_request(request)))
            except BadInput as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
                raise  # unreachable: abort raises

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def test_tritonclient_grpc_talks_to_the_codec_end_to_end(grpc_port: int) -> None:
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    try:
        assert client.is_server_live()
        inputs = []
        for name, (datatype, array) in sample_tensors().items():
            infer_input = grpcclient.InferInput(name, list(array.shape), datatype)
            infer_input.set_data_from_numpy(array)
            inputs.append(infer_input)
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("labels", "pixels", "ids")]
        result = client.infer("echo", inputs, outputs=outputs, request_id="e2e")
        assert result.get_response().id == "e2e"
        assert [o.name for o in result.get_response().outputs] == ["labels", "pixels", "ids"]
        for name in ("labels", "pixels", "ids"):
            assert_same(result.as_numpy(name), expected_echo(name))
        bad_input = grpcclient.InferInput("x", [2], "FP32").set_data_from_numpy(
            np.zeros(2, np.float32)
        )
        bad_input.set_shape([3])
        with pytest.raises(InferenceServerException, match="needs 12 bytes"):
            client.infer("echo", [bad_input])
    finally:
        client.close()
        client.close = lambda: None  # its __del__ would close again under gevent later


@pytest.fixture
def http_url() -> Iterator[str]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                request = decode_rest_request(
                    body, self.headers.get("Inference-Header-Content-Length")
                )
                payload, header_length = encode_rest_response(echo(request), request)
                status = 200
            except BadInput as exc:
                payload, header_length, status = json.dumps(exc.to_dict()).encode(), None, 400
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            if header_length is not None:
                self.send_header("Inference-Header-Content-Length", str(header_length))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_http_talks_to_the_codec_end_to_end(http_url: str, binary: bool) -> None:
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(http_url)
    try:
        inputs = http_inputs(dict.fromkeys(sample_tensors(), binary))
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in sample_tensors()]
        result = client.infer("echo", inputs, outputs=outputs, request_id="e2e")
        assert result.get_response()["id"] == "e2e"
        for name in sample_tensors():
            got = result.as_numpy(name)
            if name == "labels":
                assert [g if isinstance(g, bytes) else g.encode() for g in got.reshape(-1)] == [
                    s.encode() for s in TEXTS.reshape(-1)
                ]
            else:
                assert_same(got, expected_echo(name))
        # Default: no outputs named, so tritonclient asks for all of them in binary.
        result = client.infer("echo", inputs)
        assert_same(result.as_numpy("image"), expected_echo("image"))
        bad = httpclient.InferInput("x", [2], "INT8")
        bad.set_data_from_numpy(np.array([1, 2], dtype=np.int8)).set_shape([3])
        with pytest.raises(InferenceServerException, match="needs 3 bytes"):
            client.infer("echo", [bad])
    finally:
        client.close()
