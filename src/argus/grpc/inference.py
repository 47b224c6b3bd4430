"""``inference.GRPCInferenceService``: converts messages and delegates to a ModelPlane."""

from __future__ import annotations

from typing import Any, TypeAlias

from argus.generated import inference_pb2 as pb
from argus.generated import inference_pb2_grpc
from argus.grpc.errors import handles_errors
from argus.kserve.dataplane import ModelPlane, server_metadata
from argus.kserve.grpc import decode_grpc_request, encode_grpc_response, metadata_to_grpc
from argus.kserve.tensors import InferResponse
from argus.metrics import Metrics

#: grpc.aio.ServicerContext (grpcio ships no type hints).
Context: TypeAlias = Any


def _answered(response: InferResponse) -> list[tuple[str, str]]:
    return [(response.model_name, response.model_version)]


class InferenceServicer(inference_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: ModelPlane, metrics: Metrics) -> None:
        self.plane = plane
        self.metrics = metrics

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> Any:
        return pb.ServerReadyResponse(ready=self.plane.ready())

    @handles_errors
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> Any:
        ready = await self.plane.model_ready(request.name, request.version)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> Any:
        return pb.ServerMetadataResponse(**server_metadata())

    @handles_errors
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> Any:
        return metadata_to_grpc(await self.plane.model_metadata(request.name, request.version))

    @handles_errors
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> Any:
        async def infer() -> InferResponse:
            decoded = decode_grpc_request(request)
            return await self.plane.infer(request.model_name, request.model_version, decoded)

        response = await self.metrics.track("grpc", "", infer(), _answered)
        return encode_grpc_response(response)
