"""argus.grpc.inference in process: server and model readiness follow the role's model loading,
and a model service answers only for its own models. The rest of the protocol is covered
against a real server with tritonclient by tests/kserve/test_conformance.py."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from argus.generated import inference_pb2 as pb
from argus.generated import inference_pb2_grpc
from argus.server import ServeOptions
from argus.settings import Settings
from tests.grpc.conftest import start_grpc, stop_grpc
from tests.inprocess import LoopThread

LABELS = "efficientnet-lite0"


def test_ready_once_the_model_service_has_loaded_its_models(
    grpc_home: Path, loop: LoopThread
) -> None:
    opts = ServeOptions(role="model", models=[LABELS])
    served = start_grpc(loop, Settings(home=grpc_home), opts, load=False, vision=False)
    try:
        with grpc.insecure_channel(served.target) as channel:
            stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)

            def ready(version: str = "") -> bool:
                reply = stub.ModelReady(pb.ModelReadyRequest(name=LABELS, version=version),
                                        timeout=30)
                return bool(reply.ready)

            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live
            assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
            assert (ready(), ready("1"), ready("production")) == (False, False, False)
            loop.run(served.parts.load(opts))
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
            assert (ready(), ready("1"), ready("production")) == (True, True, True)

            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelReady(pb.ModelReadyRequest(name="mtcnn"), timeout=30)
            error = caught.value
            assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
            assert error.details() == (  # type: ignore[attr-defined]
                f"this model service serves only {LABELS}, not 'mtcnn'"
            )
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelReady(pb.ModelReadyRequest(name=LABELS, version="7"), timeout=30)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    finally:
        stop_grpc(loop, served)
