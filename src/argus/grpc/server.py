"""The gRPC server of a role: v2 inference always; with a core, ``argus.v1.Vision`` (the image
API) too. Runs on the caller's event loop (grpc.aio)."""

from __future__ import annotations

import logging

import grpc.aio

from argus.auth import Tokens
from argus.core import Core
from argus.errors import ConfigError
from argus.generated import inference_pb2_grpc
from argus.generated.v1 import vision_pb2_grpc
from argus.grpc.auth import TokenInterceptor
from argus.grpc.inference import InferenceServicer
from argus.grpc.vision import VisionServicer
from argus.kserve.dataplane import ModelPlane
from argus.metrics import Metrics

log = logging.getLogger(__name__)

#: Headroom over the image limit for one message (tensors of a batch, protobuf framing).
MESSAGE_HEADROOM = 1024 * 1024
MIN_MESSAGE_BYTES = 64 * 1024 * 1024


def message_limit(max_image_bytes: int) -> int:
    """Largest gRPC message accepted or sent: a whole image (AskMany, ModelInfer with BYTES)
    or a batch of preprocessed tensors."""
    return max(max_image_bytes + MESSAGE_HEADROOM, MIN_MESSAGE_BYTES)


def build_server(
    address: str,
    *,
    plane: ModelPlane,
    metrics: Metrics,
    tokens: Tokens,
    max_image_bytes: int,
    core: Core | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """A server listening on ``address`` (``host:port``; port 0 picks one); returns it with the
    bound port. Call ``await server.start()`` on the serving event loop."""
    limit = message_limit(max_image_bytes)
    server = grpc.aio.server(
        interceptors=[TokenInterceptor(tokens)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(plane, metrics), server
    )
    if core is not None:
        vision_pb2_grpc.add_VisionServicer_to_server(
            VisionServicer(core, metrics, max_image_bytes, tokens), server
        )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(f"cannot listen for gRPC on {address}: the address is in use or invalid")
    return server, port
