"""argus.v1.Vision over gRPC against real servers: chunked Ask within and over the byte limit,
and AskMany sessions in which one bad image does not end the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from argus.generated.v1 import vision_pb2 as v1
from tests.grpc.conftest import LOWER_LIMIT, MB
from tests.roles import Served, answer_of, chunks, comparable, vision_stub


def rest(served: Served, question: str, data: bytes, **params: str) -> dict[str, Any]:
    response = httpx.post(
        f"{served.url}/v1/questions/{question}", content=data, params=params, timeout=120
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ask(served: Served, stream: Iterator[v1.ImageChunk]) -> v1.Answer:
    channel, stub = vision_stub(served.grpc_target)
    with channel:
        reply: v1.Answer = stub.Ask(stream, timeout=120)
        return reply


def ask_error(served: Served, stream: Iterator[v1.ImageChunk]) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        ask(served, stream)
    return caught.value


def held_back_error(served: Served, stream: Iterator[v1.ImageChunk]) -> Any:
    """Send the stream's header, then wait for the call to end before sending the rest (which
    is sent only if it has not ended within 60 s); the error the call ended with."""
    import time

    channel, stub = vision_stub(served.grpc_target)
    calls: list[Any] = []

    def held() -> Iterator[v1.ImageChunk]:
        yield next(stream)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (calls and calls[0].done()):
            time.sleep(0.01)
        if not calls[0].done():
            yield from stream

    with channel:
        calls.append(stub.Ask.future(held(), timeout=120))
        with pytest.raises(grpc.RpcError) as caught:
            calls[0].result()
        return caught.value


def test_a_30_mb_png_uploads_in_chunks_under_a_raised_limit(
    raised: Served, big_png: bytes
) -> None:
    reply = ask(raised, chunks("labels", big_png, size=MB, announce=True, top_k=3))
    assert reply.request_id == "r-1"
    answer = answer_of(reply)
    assert answer["image"]["width"] == 4500 and answer["image"]["height"] == 3000
    assert answer["answer"]["labels"][0]["label"] == "espresso"
    assert len(answer["answer"]["labels"]) == 3
    assert comparable(answer) == comparable(rest(raised, "labels", big_png, top_k="3"))


@pytest.mark.parametrize("announce", [False, True], ids=["unannounced", "announced"])
def test_over_the_limit_the_upload_ends_with_resource_exhausted(
    lowered: Served, big_png: bytes, photos: dict[str, bytes], announce: bool
) -> None:
    sent: list[int] = []
    if announce:
        # The header alone is refused: the client holds the image back until the call ends
        # (or 60 s pass), and not one image byte has to be sent.
        error = held_back_error(lowered, chunks("labels", big_png, size=256 * 1024,
                                                announce=True, sent=sent))
    else:
        error = ask_error(lowered, chunks("labels", big_png, size=256 * 1024, sent=sent))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"over the limit of {LOWER_LIMIT:,} bytes" in error.details()
    # The server ended the call instead of taking in all 30 MB: on the header when it
    # announced the size, else as soon as the limit was passed (the client had pushed a few
    # more MB into socket and HTTP/2 flow-control buffers by the time the status reached it).
    if announce:
        assert sum(sent) == 0
    else:
        assert sum(sent) < len(big_png) - 5 * MB
    # ... and goes on serving.
    reply = ask(lowered, chunks("labels", photos["coffee"], size=64 * 1024))
    assert answer_of(reply)["answer"]["labels"][0]["label"] == "espresso"


def test_ask_answers_as_rest_does_with_options(lowered: Served, photos: dict[str, bytes]) -> None:
    reply = ask(
        lowered,
        chunks("labels", photos["chelsea"], size=10_000, top_k=2,
               pins={"efficientnet-lite0": "1"}),
    )
    answer = answer_of(reply)
    assert answer["models"][0]["version"] == 1
    assert comparable(answer) == comparable(rest(lowered, "labels", photos["chelsea"], top_k="2"))
    faces = answer_of(ask(lowered, chunks("faces", photos["astronaut"], size=50_000)))
    assert comparable(faces) == comparable(rest(lowered, "faces", photos["astronaut"]))


def test_ask_refuses_malformed_streams(lowered: Served, photos: dict[str, bytes]) -> None:
    data = photos["coffee"]

    def bytes_first() -> Iterator[v1.ImageChunk]:
        yield v1.ImageChunk(data=data)

    def two_headers() -> Iterator[v1.ImageChunk]:
        yield v1.ImageChunk(header=v1.AskHeader(question="labels"))
        yield v1.ImageChunk(header=v1.AskHeader(question="labels"))

    def cut_short() -> Iterator[v1.ImageChunk]:
        yield v1.ImageChunk(header=v1.AskHeader(question="labels", total_bytes=len(data)))
        yield v1.ImageChunk(data=data[: len(data) // 2])

    cases = [
        (bytes_first(), grpc.StatusCode.INVALID_ARGUMENT, "must carry the header"),
        (two_headers(), grpc.StatusCode.INVALID_ARGUMENT, "only the first message"),
        (cut_short(), grpc.StatusCode.INVALID_ARGUMENT, "cut short"),
        (chunks("nope", data), grpc.StatusCode.NOT_FOUND, "no question named 'nope'"),
        (chunks("labels", b"no image"), grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
        (chunks("labels", data, pins={"efficientnet-lite0": "missing"}),
         grpc.StatusCode.NOT_FOUND, "no alias 'missing'"),
        (chunks("labels", data, pins={"mtcnn": "1"}),
         grpc.StatusCode.INVALID_ARGUMENT, "which this question does not use"),
    ]
    for stream, code, words in cases:
        error = ask_error(lowered, stream)
        assert error.code() == code, error.details()
        assert words in error.details()


def test_ask_many_session_survives_a_bad_image(lowered: Served, photos: dict[str, bytes]) -> None:
    requests = [
        v1.AskRequest(request_id="coffee", question="labels", image=photos["coffee"],
                      options=v1.AskOptions(top_k=2)),
        v1.AskRequest(request_id="garbage", question="labels", image=b"\x00garbage\xff" * 50),
        v1.AskRequest(request_id="chelsea", question="labels", image=photos["chelsea"]),
        v1.AskRequest(request_id="unknown", question="nope", image=photos["coffee"]),
        v1.AskRequest(request_id="empty", question="labels", image=b""),
        v1.AskRequest(request_id="astronaut", question="faces", image=photos["astronaut"]),
        v1.AskRequest(request_id="rocket", question="labels", image=photos["rocket"]),
    ]
    channel, stub = vision_stub(lowered.grpc_target)
    with channel:
        replies = {reply.request_id: reply for reply in stub.AskMany(iter(requests), timeout=120)}
    assert set(replies) == {r.request_id for r in requests}
    errors = {key: reply.error for key, reply in replies.items() if reply.HasField("error")}
    assert set(errors) == {"garbage", "unknown", "empty"}
    assert (errors["garbage"].code, errors["garbage"].http_status) == ("INVALID_ARGUMENT", 415)
    assert (errors["unknown"].code, errors["unknown"].http_status) == ("NOT_FOUND", 404)
    assert (errors["empty"].code, errors["empty"].http_status) == ("INVALID_ARGUMENT", 400)
    assert "empty" in errors["empty"].message
    for request in requests:
        if request.request_id in errors:
            continue
        params = {"top_k": str(request.options.top_k)} if request.options.top_k else {}
        expected = rest(lowered, request.question, request.image, **params)
        assert comparable(answer_of(replies[request.request_id])) == comparable(expected)


def test_ask_many_answers_a_longer_session(lowered: Served, photos: dict[str, bytes]) -> None:
    names = sorted(photos)
    requests = [
        v1.AskRequest(request_id=f"{i}-{name}", question="labels", image=photos[name])
        for i in range(4)
        for name in names
    ]
    channel, stub = vision_stub(lowered.grpc_target)
    with channel:
        replies = list(stub.AskMany(iter(requests), timeout=120))
    assert sorted(r.request_id for r in replies) == sorted(r.request_id for r in requests)
    tops = {r.request_id: answer_of(r)["answer"]["labels"][0]["label"] for r in replies}
    for name in names:  # the same image gets the same answer however the session batches it
        assert len({tops[f"{i}-{name}"] for i in range(4)}) == 1


def test_ask_keeps_an_uncertain_image_for_review_when_asked(
    lowered: Served, photos: dict[str, bytes]
) -> None:
    import hashlib
    import time

    image = photos["rocket"] + b"#grpc-keep-uncertain"  # bytes no other test asks about
    digest = hashlib.sha256(image).hexdigest()
    answer_of(ask(lowered, chunks("labels", image, keep_uncertain=1.0)))  # every score is < 1

    def kept() -> list[str]:
        rows = httpx.get(f"{lowered.url}/v1/review", params={"model": "efficientnet-lite0"},
                         timeout=30).json()
        return [row["digest"] for row in rows]

    deadline = time.monotonic() + 30
    while digest not in kept() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert digest in kept()
    # Unset keeps the server's setting (off here); out of range is refused with the reason.
    other = photos["rocket"] + b"#grpc-not-kept"
    answer_of(ask(lowered, chunks("labels", other)))
    error = ask_error(lowered, chunks("labels", other, keep_uncertain=1.5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "keep_uncertain" in error.details()
    time.sleep(0.5)
    assert hashlib.sha256(other).hexdigest() not in kept()
