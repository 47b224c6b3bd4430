"""KServe v2 on the gateway: every model-level call is forwarded to a model service."""

from __future__ import annotations

from argus.core import Core
from argus.errors import Unavailable
from argus.generated import inference_pb2 as pb
from argus.kserve.grpc import decode_grpc_response, encode_grpc_request, metadata_from_grpc
from argus.kserve.tensors import InferRequest, InferResponse, ModelMetadata

from .upstream import UpstreamPool


class ProxyPlane:
    def __init__(self, core: Core, pool: UpstreamPool) -> None:
        self.core = core
        self.pool = pool

    def ready(self) -> bool:
        return bool(self.core.ready)

    async def model_metadata(self, name: str, version: str) -> ModelMetadata:
        request = pb.ModelMetadataRequest(name=name, version=version)
        return metadata_from_grpc(await self.pool.call(name, "ModelMetadata", request))

    async def model_ready(self, name: str, version: str) -> bool:
        request = pb.ModelReadyRequest(name=name, version=version)
        try:
            response = await self.pool.call(name, "ModelReady", request)
        except Unavailable:
            return False
        return bool(response.ready)

    async def infer(self, name: str, version: str, request: InferRequest) -> InferResponse:
        request.model_name, request.model_version = name, version
        response = await self.pool.call(name, "ModelInfer", encode_grpc_request(request))
        return decode_grpc_response(response)
