"""argus.grpc.vision in process (a grpc.aio server on this process's loop): option mistakes and
empty streams end an Ask with the reason; AskMany answers each image on its own, within the
byte limit; a recorded Ask is stored as the answer it gave; a session the client cancels leaves
no task behind. Chunked uploads against real servers: tests/grpc/test_vision.py."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from argus.db.engine import make_engine
from argus.generated.v1 import vision_pb2 as v1
from argus.generated.v1 import vision_pb2_grpc
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.records import find_records
from argus.server import ServeOptions
from argus.settings import Settings
from tests.grpc.conftest import APP, IN_PROCESS_LIMIT, InProcess, start_grpc, stop_grpc
from tests.inprocess import LoopThread, copy_home
from tests.roles import answer_of, chunks, vision_stub


@pytest.fixture(scope="module")
def stub(in_process: InProcess) -> Iterator[vision_pb2_grpc.VisionStub]:
    channel, stub = vision_stub(in_process.target)
    with channel:
        yield stub


def refused(stub: vision_pb2_grpc.VisionStub, stream: Iterator[v1.ImageChunk]) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Ask(stream, timeout=30)
    return caught.value


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"pins": {"mtcnn": "1"}},
         "the pin names model 'mtcnn', which this question does not use "
         "(it uses efficientnet-lite0)"),
        ({"top_k": 1001}, "top_k must be between 1 and 1000, not 1001"),
    ],
    ids=["pin-elsewhere", "top_k-1001"],
)
def test_option_mistakes_end_the_call_with_the_reason(
    stub: vision_pb2_grpc.VisionStub, photos: dict[str, bytes], options: dict[str, Any],
    reason: str,
) -> None:
    error = refused(stub, chunks("labels", photos["chelsea"], **options))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    reply = stub.Ask(chunks("labels", photos["chelsea"], top_k=1000), timeout=30)
    assert answer_of(reply)["answer"]["labels"]


def test_an_ask_without_a_header_is_refused(stub: vision_pb2_grpc.VisionStub) -> None:
    error = refused(stub, iter([]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "the Ask stream ended before its header"


def test_ask_many_answers_each_image_on_its_own(
    stub: vision_pb2_grpc.VisionStub, photos: dict[str, bytes]
) -> None:
    big = photos["coffee"] + b"\0" * IN_PROCESS_LIMIT
    requests = [
        v1.AskRequest(request_id="big", question="labels", image=big),
        v1.AskRequest(request_id="top_k", question="labels", image=photos["coffee"],
                      options=v1.AskOptions(top_k=5000)),
        v1.AskRequest(request_id="pin", question="labels", image=photos["coffee"],
                      options=v1.AskOptions(pins={"mtcnn": "1"})),
        v1.AskRequest(request_id="ok", question="labels", image=photos["coffee"],
                      options=v1.AskOptions(top_k=1)),
        v1.AskRequest(question="faces", image=photos["astronaut"]),
    ]
    replies = {r.request_id: r for r in stub.AskMany(iter(requests), timeout=60)}
    assert set(replies) == {"big", "top_k", "pin", "ok", ""}
    errors = {
        key: (r.error.code, r.error.http_status) for key, r in replies.items() if r.error.code
    }
    assert errors == {
        "big": ("RESOURCE_EXHAUSTED", 413),
        "top_k": ("INVALID_ARGUMENT", 400),
        "pin": ("INVALID_ARGUMENT", 400),
    }
    assert replies["big"].error.message == (
        f"the image is {len(big):,} bytes, over the limit of {IN_PROCESS_LIMIT:,} bytes"
    )
    assert "which this question does not use" in replies["pin"].error.message
    assert [label["label"] for label in answer_of(replies["ok"])["answer"]["labels"]] == [
        "espresso"
    ]
    assert answer_of(replies[""])["answer"]["faces"]


def test_an_empty_session_ends_without_answers(stub: vision_pb2_grpc.VisionStub) -> None:
    assert list(stub.AskMany(iter([]), timeout=30)) == []


def test_a_recorded_ask_is_stored_as_the_answer_it_gave(
    stub: vision_pb2_grpc.VisionStub, in_process: InProcess, loop: LoopThread,
    photos: dict[str, bytes],
) -> None:
    image = photos["rocket"] + b"#grpc-record"
    reply = stub.Ask(chunks("labels", image, top_k=2, app=APP, record=True), timeout=30)
    answer = answer_of(reply)
    assert answer["image"]["sha256"] == hashlib.sha256(image).hexdigest()
    stub.Ask(chunks("labels", image, top_k=2), timeout=30)  # not recorded
    core = in_process.parts.core
    loop.run(core.records.flush_async())
    records = find_records(core.engine, image_sha256=answer["image"]["sha256"])
    assert len(records) == 1
    record = records[0]
    assert (record["question"], record["source"], record["app"]) == ("labels", "grpc", APP)
    assert record["models"] == answer["models"] and record["answer"] == answer["answer"]
    assert len(record["answer"]["labels"]) == 2


def session_tasks(loop: LoopThread) -> list[str]:
    """The tasks of AskMany sessions still on the server's loop."""

    async def names() -> list[str]:
        coros = [task.get_coro() for task in asyncio.all_tasks()]
        return [name for c in coros if "AskMany" in (name := getattr(c, "__qualname__", ""))]

    return loop.run(names())


def test_a_session_the_client_cancels_leaves_nothing_running(
    stub: vision_pb2_grpc.VisionStub, loop: LoopThread, photos: dict[str, bytes]
) -> None:
    def endless() -> Iterator[v1.AskRequest]:
        for i in itertools.count():
            yield v1.AskRequest(request_id=str(i), question="labels",
                                image=photos["flower"] + f"#{i}".encode())

    session = stub.AskMany(endless(), timeout=60)
    first = next(session)
    assert answer_of(first)["answer"]["labels"]
    session.cancel()
    with pytest.raises(grpc.RpcError) as caught:
        list(session)
    assert caught.value.code() == grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while session_tasks(loop) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session_tasks(loop) == []
    again = stub.Ask(chunks("labels", photos["flower"]), timeout=30)
    assert answer_of(again)["answer"]["labels"][0]["label"] == "daisy"


@pytest.fixture(scope="module")
def canary_on_mtcnn(grpc_home: Path, loop: LoopThread, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[InProcess]:
    """The pulled models, with alias ``canary`` on mtcnn (version 1) only."""
    home = copy_home(grpc_home, tmp_path_factory.mktemp("pins") / "home")
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    try:
        ModelRegistry(engine, PackageStore(settings.packages_dir)).set_alias(
            "mtcnn", "canary", 1, actor="tests")
    finally:
        engine.dispose()
    served = start_grpc(loop, settings, ServeOptions())
    try:
        yield served
    finally:
        stop_grpc(loop, served)


@pytest.mark.parametrize("target", ["1", "canary"])
def test_a_pin_pins_only_the_model_it_names(
    canary_on_mtcnn: InProcess, photos: dict[str, bytes], target: str
) -> None:
    # vision.proto: "Pins a model of the question's graph to a version or an alias ...
    # Models not named here use their `production` alias." `describe` uses both models.
    channel, stub = vision_stub(canary_on_mtcnn.target)
    with channel:
        reply = stub.Ask(chunks("describe", photos["astronaut"], pins={"mtcnn": target}),
                         timeout=30)
    models = {m["name"]: m["version"] for m in answer_of(reply)["models"]}
    assert models == {"efficientnet-lite0": 1, "mtcnn": 1}


def test_more_bytes_than_announced_is_refused_as_such(
    canary_on_mtcnn: InProcess, photos: dict[str, bytes]
) -> None:
    data = photos["coffee"]

    def longer() -> Iterator[v1.ImageChunk]:
        yield v1.ImageChunk(header=v1.AskHeader(question="labels", total_bytes=100))
        yield v1.ImageChunk(data=data[:200])

    channel, stub = vision_stub(canary_on_mtcnn.target)
    with channel, pytest.raises(grpc.RpcError) as caught:
        stub.Ask(longer(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert caught.value.details() == (  # type: ignore[attr-defined]
        "the upload is longer than announced: 200 bytes arrived, the header said 100"
    )
