"""argus.grpc.server in process: a role without a core serves v2 inference but not the image
API, and an address that is taken is refused with a sentence."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest

from argus.auth import Tokens
from argus.errors import ConfigError
from argus.generated import inference_pb2 as pb
from argus.generated import inference_pb2_grpc
from argus.grpc.server import build_server
from argus.metrics import Metrics
from argus.server import ServeOptions, build_parts
from argus.settings import Settings
from tests.grpc.conftest import start_grpc, stop_grpc
from tests.inprocess import LoopThread
from tests.roles import chunks, vision_stub

LABELS = "efficientnet-lite0"


def test_without_a_core_the_image_api_is_not_served(
    grpc_home: Path, loop: LoopThread, photos: dict[str, bytes]
) -> None:
    served = start_grpc(loop, Settings(home=grpc_home),
                        ServeOptions(role="model", models=[LABELS]), load=False, vision=False)
    try:
        with grpc.insecure_channel(served.target) as channel:
            inference = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            assert inference.ServerLive(pb.ServerLiveRequest(), timeout=30).live
            meta = inference.ModelMetadata(pb.ModelMetadataRequest(name=LABELS), timeout=30)
            assert meta.name == LABELS and list(meta.versions) == ["1"]
        channel, vision = vision_stub(served.target)
        with channel, pytest.raises(grpc.RpcError) as caught:
            vision.Ask(chunks("labels", photos["coffee"]), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    finally:
        stop_grpc(loop, served)


def test_a_taken_address_is_refused_with_a_sentence(grpc_home: Path, loop: LoopThread) -> None:
    parts = build_parts(ServeOptions(role="model", models=[LABELS]), Settings(home=grpc_home))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"

        async def build() -> None:
            build_server(address, plane=parts.plane, metrics=Metrics(), tokens=Tokens(),
                         max_image_bytes=1024)

        try:
            with pytest.raises(ConfigError) as caught:
                loop.run(build())
        finally:
            loop.run(parts.core.close())
    assert caught.value.message == (
        f"cannot listen for gRPC on {address}: the address is in use or invalid"
    )
