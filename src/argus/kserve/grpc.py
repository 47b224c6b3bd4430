"""KServe v2 over gRPC: ``ModelInferRequest`` / ``ModelInferResponse`` messages.

Inputs may come in typed ``contents`` or in ``raw_input_contents``; responses always use
``raw_output_contents``, which is what ``tritonclient.grpc`` reads. The client side (the gateway
calling a model service) sends raw contents too.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from argus.errors import BadInput
from argus.generated import inference_pb2 as pb
from argus.kserve.tensors import (
    InferRequest,
    InferResponse,
    InferTensor,
    ModelMetadata,
    Parameters,
    ParameterValue,
    TensorSpec,
    check_unique,
    element_count,
    kind_fits,
    numpy_dtype,
    requested_output,
    tensor_from_raw,
    tensor_to_bytes,
)

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

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


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
        if wide.size and dtype.kind in "iu" and not kind_fits(wide, dtype):
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
    check_unique(tensor.name for tensor in tensors)
    return tensors


def decode_grpc_request(message: pb.ModelInferRequest) -> InferRequest:
    """A ``ModelInferRequest`` (typed or raw input contents) as an InferRequest."""
    inputs = _tensors_from_grpc(message.inputs, message.raw_input_contents, "input")
    if not inputs:
        raise BadInput("the inference request has no inputs")
    outputs = [
        requested_output(output.name, parameters_from_grpc(output.parameters))
        for output in message.outputs
    ]
    check_unique(output.name for output in outputs)
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


def metadata_to_grpc(metadata: ModelMetadata) -> pb.ModelMetadataResponse:
    message = pb.ModelMetadataResponse(
        name=metadata.name, versions=metadata.versions, platform=metadata.platform
    )
    for specs, target in ((metadata.inputs, message.inputs), (metadata.outputs, message.outputs)):
        for spec in specs:
            target.add(name=spec.name, datatype=spec.datatype, shape=spec.shape)
    return message


def metadata_from_grpc(message: pb.ModelMetadataResponse) -> ModelMetadata:
    def specs(entries: Sequence[Any]) -> list[TensorSpec]:
        return [TensorSpec(e.name, e.datatype, tuple(e.shape)) for e in entries]

    return ModelMetadata(
        name=message.name,
        versions=list(message.versions),
        platform=message.platform,
        inputs=specs(message.inputs),
        outputs=specs(message.outputs),
    )
