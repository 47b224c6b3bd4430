"""Tensors on the KServe v2 / Open Inference Protocol wire, whatever the transport.

REST and gRPC endpoints only call the functions here to turn requests into ``InferRequest``
(numpy tensors) and ``InferResponse`` back into bytes; the inference core never sees JSON or
protobuf. What is covered:

* datatypes: BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64 and BYTES. Numeric tensors are
  little-endian on the wire; a BYTES tensor is a numpy ``object`` array of ``bytes``, and on the
  wire each element is a 4-byte little-endian length followed by the bytes.
* REST: ``data`` as a flat or nested JSON list, and the binary tensor data extension (a JSON
  header of ``Inference-Header-Content-Length`` bytes followed by the raw inputs that declare
  ``parameters.binary_data_size``; outputs come back the same way when asked for with
  ``parameters.binary_data`` per output or ``binary_data_output`` for the whole request).
* gRPC: ``ModelInferRequest`` inputs in typed ``contents`` or in ``raw_input_contents``;
  responses always use ``raw_output_contents``, which is what ``tritonclient.grpc`` reads.

Numeric tensors decoded from raw bytes are read-only views of the request buffer (no copy).
Anything malformed raises ``BadInput`` with a sentence naming the tensor and what is wrong.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from argus.errors import BadInput
from argus.grpc.generated import inference_pb2 as pb

ParameterValue: TypeAlias = bool | int | float | str
Parameters: TypeAlias = dict[str, ParameterValue]

#: Protocol datatype -> numpy dtype. Numeric dtypes are little-endian, as on the wire.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(np.object_),
}

# The InferTensorContents field carrying each datatype, and that field's element type.
# FP16 has none: it can only travel as raw bytes.
_CONTENTS: dict[str, tuple[str, np.dtype[Any]]] = {
    "BOOL": ("bool_contents", np.dtype(np.bool_)),
    "UINT8": ("uint_contents", np.dtype("<u4")),
    "UINT16": ("uint_contents", np.dtype("<u4")),
    "UINT32": ("uint_contents", np.dtype("<u4")),
    "UINT64": ("uint64_contents", np.dtype("<u8")),
    "INT8": ("int_contents", np.dtype("<i4")),
    "INT16": ("int_contents", np.dtype("<i4")),
    "INT32": ("int_contents", np.dtype("<i4")),
    "INT64": ("int64_contents", np.dtype("<i8")),
    "FP32": ("fp32_contents", np.dtype("<f4")),
    "FP64": ("fp64_contents", np.dtype("<f8")),
    "BYTES": ("bytes_contents", np.dtype(np.object_)),
}

_LENGTH = struct.Struct("<I")
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
_MAX_ELEMENTS = 2**48


def numpy_dtype(datatype: str, where: str = "tensor") -> np.dtype[Any]:
    """The numpy dtype for a protocol datatype; ``where`` names the tensor in the error."""
    try:
        return DATATYPES[datatype]
    except (KeyError, TypeError):
        known = ", ".join(DATATYPES)
        raise BadInput(f"{where} has datatype {datatype!r}; Argus supports {known}") from None


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol datatype for a numpy dtype (``object``, bytes and str arrays are BYTES)."""
    if dtype.kind in "OSU":
        return "BYTES"
    for name, candidate in DATATYPES.items():
        if candidate.kind == dtype.kind and candidate.itemsize == dtype.itemsize:
            return name
    raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


@dataclass
class InferTensor:
    """One named tensor of a request or response; ``data`` already has ``shape``."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: Parameters = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Violations here are programming errors (a model or task produced the wrong thing),
        # not a client's fault: ValueError, not BadInput.
        self.shape = tuple(int(dim) for dim in self.shape)
        expected = DATATYPES.get(self.datatype)
        if expected is None:
            raise ValueError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}")
        if tuple(self.data.shape) != self.shape:
            raise ValueError(
                f"tensor {self.name!r}: data has shape {self.data.shape}, declared {self.shape}"
            )
        actual = self.data.dtype
        if self.datatype == "BYTES":
            if actual.kind not in "OSU":
                raise ValueError(f"tensor {self.name!r}: BYTES data has numpy dtype {actual}")
        elif (actual.kind, actual.itemsize) != (expected.kind, expected.itemsize):
            raise ValueError(f"tensor {self.name!r}: {self.datatype} data has numpy dtype {actual}")

    @classmethod
    def from_numpy(
        cls, name: str, array: np.ndarray, parameters: Parameters | None = None
    ) -> InferTensor:
        """A tensor whose datatype follows the array's dtype (str/bytes arrays become BYTES)."""
        datatype = datatype_of(array.dtype)
        if datatype == "BYTES" and array.dtype.kind != "O":
            converted = np.empty(array.shape, dtype=np.object_)
            converted.reshape(-1)[:] = [_element_bytes(item) for item in array.reshape(-1)]
            array = converted
        return cls(name, datatype, tuple(array.shape), array, dict(parameters or {}))


@dataclass
class RequestedOutput:
    """An output the client asked for; ``binary_data`` is None when it did not say."""

    name: str
    binary_data: bool | None = None
    parameters: Parameters = field(default_factory=dict)


@dataclass
class InferRequest:
    inputs: list[InferTensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    id: str = ""
    parameters: Parameters = field(default_factory=dict)
    #: REST request-wide ``binary_data_output``: outputs default to binary data.
    binary_data_output: bool = False
    #: Set from the gRPC message; on REST they come from the URL.
    model_name: str = ""
    model_version: str = ""

    def wants_binary(self, output_name: str) -> bool:
        """Whether a REST response should carry this output as binary data."""
        for requested in self.outputs:
            if requested.name == output_name and requested.binary_data is not None:
                return requested.binary_data
        return self.binary_data_output


@dataclass
class InferResponse:
    model_name: str
    outputs: list[InferTensor]
    model_version: str = ""
    id: str = ""
    parameters: Parameters = field(default_factory=dict)


def select_outputs(request: InferRequest, produced: Sequence[InferTensor]) -> list[InferTensor]:
    """The outputs to return: all of them, or the requested ones in the requested order."""
    if not request.outputs:
        return list(produced)
    by_name = {tensor.name: tensor for tensor in produced}
    selected = []
    for requested in request.outputs:
        tensor = by_name.get(requested.name)
        if tensor is None:
            raise BadInput(
                f"output {requested.name!r} was requested but the model has only {sorted(by_name)}"
            )
        selected.append(tensor)
    return selected


# --- raw bytes -------------------------------------------------------------------------------


def element_count(shape: Sequence[Any], where: str) -> int:
    """Number of elements of a shape given by a client, checking every dimension."""
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise BadInput(f"{where} has shape {list(shape)}; dimensions must be integers >= 0")
    # Zero-size tensors too: numpy refuses shapes like [0, 2**62] (and a client has no use).
    if math.prod(dim for dim in shape if dim) > _MAX_ELEMENTS:
        raise BadInput(f"{where} has shape {list(shape)}, beyond any tensor Argus accepts")
    return math.prod(shape)


def _element_bytes(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    raise ValueError(f"a BYTES element must be bytes or str, not {type(item).__name__}")


def serialize_bytes(array: np.ndarray) -> bytes:
    """BYTES elements in row-major order, each as 4-byte little-endian length + bytes."""
    parts: list[bytes] = []
    for item in array.reshape(-1):
        element = _element_bytes(item)
        parts.append(_LENGTH.pack(len(element)))
        parts.append(element)
    return b"".join(parts)


def deserialize_bytes(buffer: bytes | memoryview, count: int, where: str) -> np.ndarray:
    """Exactly ``count`` length-prefixed BYTES elements, as a 1-D object array of bytes."""
    view = memoryview(buffer)
    size = len(view)
    # Every element needs at least its 4-byte length: refuse before allocating for it.
    if count * _LENGTH.size > size:
        raise BadInput(
            f"{where} is truncated: {count} BYTES elements need at least {count * 4} bytes, "
            f"got {size}"
        )
    out = np.empty(count, dtype=np.object_)
    offset = 0
    for index in range(count):
        if offset + _LENGTH.size > size:
            raise BadInput(f"{where} is truncated: it ends inside the length of element {index}")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + length > size:
            raise BadInput(
                f"{where} is truncated: element {index} declares {length} bytes but only "
                f"{size - offset} remain"
            )
        out[index] = bytes(view[offset : offset + length])
        offset += length
    if offset != size:
        raise BadInput(
            f"{where} has {size - offset} bytes left after its {count} BYTES elements; "
            "the shape does not match the data"
        )
    return out


def tensor_from_raw(
    name: str,
    datatype: str,
    shape: Sequence[Any],
    raw: bytes | memoryview,
    parameters: Parameters | None = None,
    role: str = "input",
) -> InferTensor:
    """A tensor from its flattened row-major wire bytes, checking the size against the shape."""
    where = f"{role} {name!r}"
    dtype = numpy_dtype(datatype, where)
    count = element_count(shape, where)
    dims = tuple(shape)
    if datatype == "BYTES":
        data = deserialize_bytes(raw, count, where).reshape(dims)
    else:
        expected = count * dtype.itemsize
        if len(raw) != expected:
            raise BadInput(
                f"{where} is {datatype} with shape {list(dims)}, which needs {expected} bytes, "
                f"but {len(raw)} bytes were sent"
            )
        if datatype == "BOOL":
            # Any non-zero byte is true, as in C; numpy would keep the odd byte values.
            data = (np.frombuffer(raw, dtype=np.uint8) != 0).reshape(dims)
        else:
            data = np.frombuffer(raw, dtype=dtype).reshape(dims)
    return InferTensor(name, datatype, dims, data, dict(parameters or {}))


def tensor_to_bytes(tensor: InferTensor) -> bytes:
    """The flattened row-major wire bytes of a tensor."""
    if tensor.datatype == "BYTES":
        return serialize_bytes(tensor.data)
    return np.ascontiguousarray(tensor.data, dtype=DATATYPES[tensor.datatype]).tobytes()


# --- REST (JSON + binary tensor data extension) ----------------------------------------------


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
        if array.size and not _kind_fits(array, dtype):
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


def _kind_fits(array: np.ndarray, dtype: np.dtype[Any]) -> bool:
    kind = array.dtype.kind
    if dtype.kind == "b":
        return kind == "b"
    if dtype.kind == "f":
        return kind in "iuf"
    if kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return bool(int(array.min()) >= info.min and int(array.max()) <= info.max)


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
    _check_unique(tensor.name for tensor in inputs)
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
            _requested_output(
                entry["name"],
                _check_parameters(entry.get("parameters"), f"output {entry['name']!r}"),
            )
        )
    _check_unique(output.name for output in outputs)
    return outputs


def _requested_output(name: str, parameters: Parameters) -> RequestedOutput:
    binary = parameters.pop("binary_data", None)
    if binary is not None and not isinstance(binary, bool):
        raise BadInput(f"output {name!r}: parameter 'binary_data' must be true or false")
    return RequestedOutput(name, binary, parameters)


def _check_unique(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInput(f"tensor {name!r} appears twice in the request")
        seen.add(name)


def _json_values(tensor: InferTensor) -> list[Any]:
    flat = tensor.data.reshape(-1)
    if tensor.datatype != "BYTES":
        values: list[Any] = flat.tolist()
        return values
    try:
        return [_element_bytes(item).decode("utf-8") for item in flat]
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


# --- gRPC ------------------------------------------------------------------------------------


def parameters_from_grpc(params: Mapping[str, pb.InferParameter]) -> Parameters:
    out: Parameters = {}
    for key, param in params.items():
        choice = param.WhichOneof("parameter_choice")
        if choice is not None:
            out[key] = getattr(param, choice)
    return out


def parameters_to_grpc(
    params: Mapping[str, ParameterValue], target: MutableMapping[str, pb.InferParameter]
) -> None:
    for key, value in params.items():
        slot = target[key]
        if isinstance(value, bool):
            slot.bool_param = value
        elif isinstance(value, int):
            if _INT64_MIN <= value < 2**63:
                slot.int64_param = value
            elif 0 <= value <= _UINT64_MAX:
                slot.uint64_param = value
            else:
                raise ValueError(f"parameter {key!r}={value} does not fit in 64 bits")
        elif isinstance(value, float):
            slot.double_param = value
        else:
            slot.string_param = value


def _tensor_from_contents(
    name: str,
    datatype: str,
    shape: Sequence[int],
    contents: pb.InferTensorContents,
    parameters: Parameters,
    role: str,
) -> InferTensor:
    where = f"{role} {name!r}"
    dtype = numpy_dtype(datatype, where)
    count = element_count(shape, where)
    if datatype not in _CONTENTS:
        raise BadInput(f"{where} is {datatype}, which can only be sent in raw contents")
    field_name, field_dtype = _CONTENTS[datatype]
    values = getattr(contents, field_name)
    if len(values) != count:
        raise BadInput(
            f"{where} has {len(values)} values in contents.{field_name} but shape "
            f"{list(shape)} needs {count}"
        )
    if datatype == "BYTES":
        data = np.empty(count, dtype=np.object_)
        data[:] = list(values)
    else:
        # The field type (int32 for INT8..INT32, ...) bounds the values; narrower datatypes
        # still need a range check before the cast.
        wide = np.fromiter(values, dtype=field_dtype, count=count)
        if wide.size and dtype.kind in "iu" and not _kind_fits(wide, dtype):
            raise BadInput(f"{where} has values outside the range of {datatype}")
        data = wide.astype(dtype, copy=False)
    return InferTensor(name, datatype, tuple(shape), data.reshape(tuple(shape)), parameters)


def _tensors_from_grpc(
    entries: Sequence[
        pb.ModelInferRequest.InferInputTensor | pb.ModelInferResponse.InferOutputTensor
    ],
    raw_contents: Sequence[bytes],
    role: str,
) -> list[InferTensor]:
    if raw_contents and len(raw_contents) != len(entries):
        raise BadInput(
            f"the message has {len(raw_contents)} raw contents for {len(entries)} {role}s; "
            f"raw contents must hold one entry per {role}, in order"
        )
    tensors = []
    for index, entry in enumerate(entries):
        if not entry.name:
            raise BadInput(f"{role} #{index} has no name")
        shape = list(entry.shape)
        parameters = parameters_from_grpc(entry.parameters)
        if raw_contents:
            if entry.HasField("contents"):
                raise BadInput(
                    f"{role} {entry.name!r} has typed contents although the message uses raw "
                    "contents; use one or the other"
                )
            raw = raw_contents[index]
            tensors.append(
                tensor_from_raw(entry.name, entry.datatype, shape, raw, parameters, role)
            )
        else:
            contents = entry.contents
            tensors.append(
                _tensor_from_contents(entry.name, entry.datatype, shape, contents, parameters, role)
            )
    _check_unique(tensor.name for tensor in tensors)
    return tensors


def decode_grpc_request(message: pb.ModelInferRequest) -> InferRequest:
    """A ``ModelInferRequest`` (typed or raw input contents) as an InferRequest."""
    inputs = _tensors_from_grpc(message.inputs, message.raw_input_contents, "input")
    if not inputs:
        raise BadInput("the inference request has no inputs")
    outputs = [
        _requested_output(output.name, parameters_from_grpc(output.parameters))
        for output in message.outputs
    ]
    _check_unique(output.name for output in outputs)
    return InferRequest(
        inputs=inputs,
        outputs=outputs,
        id=message.id,
        parameters=parameters_from_grpc(message.parameters),
        model_name=message.model_name,
        model_version=message.model_version,
    )


def encode_grpc_response(response: InferResponse) -> pb.ModelInferResponse:
    """A ``ModelInferResponse`` carrying every output in ``raw_output_contents``."""
    message = pb.ModelInferResponse(
        model_name=response.model_name, model_version=response.model_version, id=response.id
    )
    parameters_to_grpc(response.parameters, message.parameters)
    for tensor in response.outputs:
        output = message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        parameters_to_grpc(tensor.parameters, output.parameters)
        message.raw_output_contents.append(tensor_to_bytes(tensor))
    return message


def encode_grpc_request(request: InferRequest) -> pb.ModelInferRequest:
    """The client side (gateway -> model service): inputs go in ``raw_input_contents``."""
    message = pb.ModelInferRequest(
        model_name=request.model_name, model_version=request.model_version, id=request.id
    )
    parameters_to_grpc(request.parameters, message.parameters)
    for tensor in request.inputs:
        entry = message.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        parameters_to_grpc(tensor.parameters, entry.parameters)
        message.raw_input_contents.append(tensor_to_bytes(tensor))
    for requested in request.outputs:
        output = message.outputs.add(name=requested.name)
        parameters_to_grpc(requested.parameters, output.parameters)
    return message


def decode_grpc_response(message: pb.ModelInferResponse) -> InferResponse:
    """The client side: a ``ModelInferResponse`` (raw or typed contents) as an InferResponse."""
    return InferResponse(
        model_name=message.model_name,
        outputs=_tensors_from_grpc(message.outputs, message.raw_output_contents, "output"),
        model_version=message.model_version,
        id=message.id,
        parameters=parameters_from_grpc(message.parameters),
    )
