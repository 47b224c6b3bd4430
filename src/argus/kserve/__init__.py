"""KServe v2 / Open Inference Protocol: tensors, their REST and gRPC codecs, and the data plane.

``tensors`` holds the transport-neutral types, ``rest`` and ``grpc`` turn them into wire bytes,
and ``dataplane`` answers the protocol's calls (metadata, readiness, infer) for any transport.
"""

from __future__ import annotations

from argus.kserve.grpc import (
    decode_grpc_request,
    decode_grpc_response,
    encode_grpc_request,
    encode_grpc_response,
)
from argus.kserve.rest import decode_rest_request, encode_rest_response
from argus.kserve.tensors import (
    DATATYPES,
    InferRequest,
    InferResponse,
    InferTensor,
    Parameters,
    ParameterValue,
    RequestedOutput,
    datatype_of,
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
