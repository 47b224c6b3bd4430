"""KServe v2 over REST: JSON tensors and the binary tensor data extension.

A request is a JSON document, or a JSON header of ``Inference-Header-Content-Length`` bytes
followed by the raw inputs that declare ``parameters.binary_data_size``. Outputs come back the
same way when asked for with ``parameters.binary_data`` per output or ``binary_data_output`` for
the whole request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from argus.errors import BadInput
from argus.kserve.tensors import (
    DATATYPES,
    InferRequest,
    InferResponse,
    InferTensor,
    Parameters,
    RequestedOutput,
    check_unique,
    element_bytes,
    element_count,
    kind_fits,
    numpy_dtype,
    requested_output,
    tensor_from_raw,
    tensor_to_bytes,
)

#: ``parameters`` of a request, an input or an output: names to strings, numbers or booleans.
PARAMETERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
#: A JSON ``/infer`` body as :func:`decode_rest_request` takes it (the binary extension sends
#: the same document as a header, its inputs declaring ``parameters.binary_data_size`` instead
#: of ``data``). Whether the data fits the shape and the inputs fit the model is checked
#: against the model (400).
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": PARAMETERS_SCHEMA,
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape", "data"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "datatype": {"enum": [*DATATYPES]},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "parameters": PARAMETERS_SCHEMA,
                    "data": {"type": "array"},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": PARAMETERS_SCHEMA},
            },
        },
    },
}


def _check_parameters(value: object, where: str) -> Parameters:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: 'parameters' must be a JSON object")
    for key, item in value.items():
        if not isinstance(item, bool | int | float | str):
            raise BadInput(
                f"{where}: parameter {key!r} must be a string, number or boolean, "
                f"not {type(item).__name__}"
            )
    return dict(value)


def _flatten(data: object) -> Iterator[object]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _json_array(data: object, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    if not isinstance(data, list):
        raise BadInput(f"{where}: 'data' must be a JSON list")
    dtype = numpy_dtype(datatype, where)
    count = math.prod(shape)
    if datatype == "BYTES":
        try:
            leaves = list(_flatten(data))
        except RecursionError:
            raise BadInput(f"{where}: 'data' nests lists too deeply") from None
        encoded = [leaf.encode("utf-8") for leaf in leaves if isinstance(leaf, str)]
        if len(encoded) != len(leaves):
            raise BadInput(f"{where}: BYTES data in JSON must be strings")
        array = np.empty(len(encoded), dtype=np.object_)
        array[:] = encoded
    else:
        try:
            array = np.asarray(data)
        except (ValueError, OverflowError, RecursionError):
            raise BadInput(
                f"{where}: nested 'data' lists are ragged or nested too deeply"
            ) from None
        if array.size and not kind_fits(array, dtype):
            raise BadInput(
                f"{where}: 'data' holds values that are not {datatype} values or that lie "
                "outside its range"
            )
        with np.errstate(over="ignore"):  # 1e39 as FP32 is inf, as IEEE 754 says
            array = array.astype(dtype)
    if array.ndim > 1 and array.shape != shape:
        raise BadInput(f"{where}: nested 'data' has shape {list(array.shape)}, not {list(shape)}")
    if array.size != count:
        raise BadInput(
            f"{where} has {array.size} values in 'data' but shape {list(shape)} needs {count}"
        )
    return array.reshape(shape)


def _json_tensor(entry: object, index: int) -> tuple[str, str, tuple[int, ...], Parameters, Any]:
    if not isinstance(entry, dict):
        raise BadInput(f"input #{index} must be a JSON object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise BadInput(f"input #{index} needs a 'name' string")
    where = f"input {name!r}"
    datatype = entry.get("datatype")
    if not isinstance(datatype, str):
        raise BadInput(f"{where} needs a 'datatype' string")
    numpy_dtype(datatype, where)
    shape = entry.get("shape")
    if not isinstance(shape, list):
        raise BadInput(f"{where} needs a 'shape' list")
    element_count(shape, where)
    parameters = _check_parameters(entry.get("parameters"), where)
    return name, datatype, tuple(shape), parameters, entry.get("data")


def parse_header_length(value: int | str | None, body_size: int) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a checked int (None if absent)."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise BadInput(f"Inference-Header-Content-Length {value!r} is not an integer") from None
    if not 0 < length <= body_size:
        raise BadInput(
            f"Inference-Header-Content-Length is {length} but the body has {body_size} bytes"
        )
    return length


def _load_json(header: bytes) -> Any:
    try:
        return json.loads(header)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"the inference request is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadInput("the inference request nests JSON too deeply") from None


def decode_rest_request(body: bytes, header_length: int | str | None = None) -> InferRequest:
    """A REST ``/infer`` body, plain JSON or JSON header + binary inputs, as an InferRequest.

    ``header_length`` is the ``Inference-Header-Content-Length`` header, None when absent.
    """
    length = parse_header_length(header_length, len(body))
    # The header is small and copied; the binary part is only viewed, never copied.
    head, binary = (
        (body, memoryview(b"")) if length is None else (body[:length], memoryview(body)[length:])
    )
    doc = _load_json(head)
    if not isinstance(doc, dict):
        raise BadInput("the inference request must be a JSON object")
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise BadInput("the request 'id' must be a string")
    parameters = _check_parameters(doc.get("parameters"), "the request")
    binary_output = parameters.pop("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise BadInput("the request parameter 'binary_data_output' must be true or false")
    entries = doc.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise BadInput("the inference request needs a non-empty 'inputs' list")

    inputs: list[InferTensor] = []
    offset = 0
    for index, entry in enumerate(entries):
        name, datatype, shape, params, data = _json_tensor(entry, index)
        where = f"input {name!r}"
        size = params.pop("binary_data_size", None)
        if size is None:
            if data is None:
                raise BadInput(f"{where} has neither 'data' nor parameters.binary_data_size")
            inputs.append(
                InferTensor(
                    name, datatype, shape, _json_array(data, datatype, shape, where), params
                )
            )
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadInput(f"{where}: binary_data_size must be an integer >= 0")
        if length is None:
            raise BadInput(
                f"{where} declares binary_data_size but the request has no "
                "Inference-Header-Content-Length header"
            )
        if data is not None:
            raise BadInput(f"{where} has both 'data' and binary_data_size; send one of them")
        if offset + size > len(binary):
            raise BadInput(
                f"the binary data of {where} is truncated: it needs {size} bytes but only "
                f"{len(binary) - offset} remain in the body"
            )
        inputs.append(
            tensor_from_raw(name, datatype, shape, binary[offset : offset + size], params)
        )
        offset += size
    if offset != len(binary):
        raise BadInput(
            f"the body has {len(binary) - offset} bytes after the binary data its inputs declare"
        )
    check_unique(tensor.name for tensor in inputs)
    return InferRequest(
        inputs=inputs,
        outputs=_rest_outputs(doc.get("outputs")),
        id=request_id,
        parameters=parameters,
        binary_data_output=binary_output,
    )


def _rest_outputs(entries: object) -> list[RequestedOutput]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise BadInput("the request 'outputs' must be a list")
    outputs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BadInput(f"requested output #{index} needs a 'name' string")
        outputs.append(
            requested_output(
                entry["name"],
                _check_parameters(entry.get("parameters"), f"output {entry['name']!r}"),
            )
        )
    check_unique(output.name for output in outputs)
    return outputs


def _json_values(tensor: InferTensor) -> list[Any]:
    flat = tensor.data.reshape(-1)
    if tensor.datatype != "BYTES":
        values: list[Any] = flat.tolist()
        return values
    try:
        return [element_bytes(item).decode("utf-8") for item in flat]
    except UnicodeDecodeError:
        raise BadInput(
            f"output {tensor.name!r} holds bytes that are not UTF-8 text, which JSON cannot "
            "carry; ask for it with parameters.binary_data=true"
        ) from None


def encode_rest_response(
    response: InferResponse, request: InferRequest | None = None
) -> tuple[bytes, int | None]:
    """The REST response body and the ``Inference-Header-Content-Length`` to send with it.

    Outputs the request asks for as binary data (see ``InferRequest.wants_binary``) follow the
    JSON header as raw bytes; the header length is None when every output is in the JSON, and
    the header must then be left out.
    """
    header: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version:
        header["model_version"] = response.model_version
    if response.id:
        header["id"] = response.id
    if response.parameters:
        header["parameters"] = dict(response.parameters)
    outputs: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    for tensor in response.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        parameters: dict[str, Any] = dict(tensor.parameters)
        if request is not None and request.wants_binary(tensor.name):
            raw = tensor_to_bytes(tensor)
            parameters["binary_data_size"] = len(raw)
            buffers.append(raw)
        else:
            entry["data"] = _json_values(tensor)
        if parameters:
            entry["parameters"] = parameters
        outputs.append(entry)
    header["outputs"] = outputs
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if not buffers:
        return head, None
    return b"".join([head, *buffers]), len(head)
