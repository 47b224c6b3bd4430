"""Tensors of the KServe v2 / Open Inference Protocol, whatever the transport.

The inference core sees only ``InferRequest`` / ``InferResponse`` holding numpy arrays; the REST
(``argus.kserve.rest``) and gRPC (``argus.kserve.grpc``) codecs turn them into wire bytes.

* datatypes: BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64 and BYTES. Numeric tensors are
  little-endian on the wire; a BYTES tensor is a numpy ``object`` array of ``bytes``, and on the
  wire each element is a 4-byte little-endian length followed by the bytes.
* Numeric tensors decoded from raw bytes are read-only views of the request buffer (no copy).

Anything malformed raises ``BadInput`` with a sentence naming the tensor and what is wrong.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from argus.errors import BadInput

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


_LENGTH = struct.Struct("<I")
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
            converted.reshape(-1)[:] = [element_bytes(item) for item in array.reshape(-1)]
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


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class ModelMetadata:
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "platform": self.platform,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }


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


def element_bytes(item: object) -> bytes:
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
        element = element_bytes(item)
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


def kind_fits(array: np.ndarray, dtype: np.dtype[Any]) -> bool:
    kind = array.dtype.kind
    if dtype.kind == "b":
        return kind == "b"
    if dtype.kind == "f":
        return kind in "iuf"
    if kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return bool(int(array.min()) >= info.min and int(array.max()) <= info.max)


def check_unique(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInput(f"tensor {name!r} appears twice in the request")
        seen.add(name)


def requested_output(name: str, parameters: Parameters) -> RequestedOutput:
    binary = parameters.pop("binary_data", None)
    if binary is not None and not isinstance(binary, bool):
        raise BadInput(f"output {name!r}: parameter 'binary_data' must be true or false")
    return RequestedOutput(name, binary, parameters)
