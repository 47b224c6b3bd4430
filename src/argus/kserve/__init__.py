"""KServe v2 / Open Inference Protocol: the transport-neutral tensor codec."""

from __future__ import annotations

from argus.kserve.codec import (
    DATATYPES,
    InferRequest,
    InferResponse,
    InferTensor,
    Parameters,
    ParameterValue,
    RequestedOutput,
    datatype_of,
    decode_grpc_request,
    decode_grpc_response,
    decode_rest_request,
    encode_grpc_request,
    encode_grpc_response,
    encode_rest_response,
    numpy_dtype,
    select_outputs,
    tensor_from_raw,
    tensor_to_bytes,
)

__all__ = [
    "DATATYPES",
    "InferRequest",
    "InferResponse",
    "InferTensor",
    "ParameterValue",
    "Parameters",
    "RequestedOutput",
    "datatype_of",
    "decode_grpc_request",
    "decode_grpc_response",
    "decode_rest_request",
    "encode_grpc_request",
    "encode_grpc_response",
    "encode_rest_response",
    "numpy_dtype",
    "select_outputs",
    "tensor_from_raw",
    "tensor_to_bytes",
]
