"""argus.ingest.askers: the local asker (models in process) and the gateway asker (HTTP to a
real server on a loopback port) answer the same JSON and sort the same failures the same way —
the image is bad (quarantine it), the settings cannot work (stop), or the service is busy or
away (try again later)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from argus.contracts import Answer, AskOptions
from argus.db.engine import make_engine
from argus.errors import ConfigError, NotFound
from argus.ingest.askers import Asker, BadImage, GatewayAsker, LocalAsker, TryLater
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.server import in_process_app, local_core
from argus.settings import Settings
from tests.conftest import free_port
from tests.inprocess import LoopThread, PortServer
from tests.roles import comparable
from tests.tiny_model import TINY, register_tiny

TOKEN = "inf-askers-7d1c"


@pytest.fixture(scope="module")
def gateway(tiny_home: Settings, loop: LoopThread) -> Iterator[str]:
    """The all-in-one REST app over ``tiny_home`` on a loopback port, inference tokens on."""
    server = PortServer(in_process_app(tiny_home.model_copy(update={"infer_tokens": TOKEN})),
                        loop)
    try:
        yield server.url
    finally:
        server.close()


def outcome(asker: Asker, data: bytes) -> Any:
    """What ``asker.ask`` gives: the answer, or the exception it raises."""

    async def ask() -> Any:
        try:
            return await asker.ask(data)
        except (BadImage, TryLater, ConfigError) as exc:
            return exc

    return ask


def local_and_gateway(settings: Settings, gateway: str, data: bytes, **options: Any
                      ) -> tuple[Any, Any]:
    """The outcome of asking ``tiny`` of ``data`` through each asker, with the same options."""
    chosen = AskOptions.parse(options, source="ingest")

    async def both() -> tuple[Any, Any]:
        local = LocalAsker(local_core(settings), TINY, chosen)
        remote = GatewayAsker(gateway, TINY, chosen, TOKEN)
        try:
            await local.start()
            await remote.start()
            return await outcome(local, data)(), await outcome(remote, data)()
        finally:
            await local.close()
            await remote.close()

    return asyncio.run(both())


def test_both_askers_give_the_same_answer(
    tiny_home: Settings, gateway: str, photos: dict[str, bytes]
) -> None:
    local, remote = local_and_gateway(tiny_home, gateway, photos["coffee"], top_k=2, version=1)
    assert isinstance(local, Answer) and isinstance(remote, Answer)
    local, remote = local.to_json(), remote.to_json()
    assert comparable(local) == comparable(remote)
    assert local["question"] == TINY and len(local["answer"]["labels"]) == 2
    assert [(m["name"], m["version"]) for m in local["models"]] == [(TINY, 1)]


@pytest.mark.parametrize(
    ("make", "options", "kind", "reason"),
    [
        (lambda p: b"plain text, no pixels", {}, BadImage, "not an image"),
        (lambda p: b"", {}, BadImage, "empty"),
        (lambda p: p["coffee"][:3000], {}, BadImage, "truncated"),
        (lambda p: p["coffee"], {"version": 7}, ConfigError, "no version 7"),
        (lambda p: p["coffee"], {"alias": "beta"}, ConfigError, "no alias 'beta'"),
        (lambda p: p["coffee"], {"app": "nope"}, ConfigError, "no app named 'nope'"),
    ],
    ids=["not-an-image", "empty", "truncated", "version", "alias", "app"],
)
def test_both_askers_sort_a_failure_the_same_way(
    tiny_home: Settings, gateway: str, photos: dict[str, bytes], make: Any,
    options: dict[str, Any], kind: type[Exception], reason: str,
) -> None:
    local, remote = local_and_gateway(tiny_home, gateway, make(photos), **options)
    assert type(local) is kind and type(remote) is kind, (local, remote)
    assert reason in str(local) and reason in str(remote)
    if kind is BadImage:  # the quarantine note is the reason the server gave, word for word
        assert local.reason == remote.reason


def test_a_question_that_does_not_exist_stops_before_any_file(tiny_home: Settings) -> None:
    async def start() -> None:
        asker = LocalAsker(local_core(tiny_home), "nope", AskOptions())
        try:
            await asker.start()
        finally:
            await asker.close()

    with pytest.raises(NotFound, match="no question named 'nope'"):
        asyncio.run(start())


def test_a_gateway_that_refuses_the_question_or_the_token_stops_the_pipeline(
    gateway: str, photos: dict[str, bytes]
) -> None:
    def remote(question: str, token: str | None) -> Any:
        asker = GatewayAsker(gateway, question, AskOptions(), token)

        async def ask() -> Any:
            try:
                return await outcome(asker, photos["coffee"])()
            finally:
                await asker.close()

        return asyncio.run(ask())

    unknown = remote("nope", TOKEN)
    assert isinstance(unknown, ConfigError)
    assert unknown.message.startswith(f"the gateway refused {gateway}/v1/questions/nope: ")
    assert "no question named 'nope'" in unknown.message
    tokenless = remote(TINY, None)
    assert isinstance(tokenless, ConfigError) and "needs an inference or admin token" in str(
        tokenless
    )
    assert isinstance(remote(TINY, TOKEN), Answer)


class Busy(BaseHTTPRequestHandler):
    """A proxy in front of a gateway that is overloaded: 503 with a plain-text body."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = b"upstream busy, try again"
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_busy_or_absent_gateway_means_try_later(photos: dict[str, bytes]) -> None:
    busy = HTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=busy.serve_forever, daemon=True).start()
    try:
        urls = [f"http://127.0.0.1:{busy.server_address[1]}", f"http://127.0.0.1:{free_port()}"]

        async def ask_each() -> list[Any]:
            results = []
            for url in urls:
                asker = GatewayAsker(url, TINY, AskOptions())
                results.append(await outcome(asker, photos["coffee"])())
                await asker.close()
            return results

        answered_503, unreachable = asyncio.run(ask_each())
    finally:
        busy.shutdown()
        busy.server_close()
    assert isinstance(answered_503, TryLater)
    assert str(answered_503) == "the gateway answered 503: upstream busy, try again"
    assert isinstance(unreachable, TryLater)
    assert str(unreachable).startswith("the gateway did not answer")


def test_a_broken_model_package_is_not_blamed_on_the_image(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    settings = Settings(home=tmp_path / "home")
    register_tiny(settings, tmp_path / "src")
    (tmp_path / "src" / "labels.txt").write_text("a\nb\nc\nd\n")
    engine = make_engine(settings.db_url)
    try:
        fields: dict[str, Any] = {
            "task": "classify", "model": "model.onnx", "labels": "labels.txt",
            "preprocess": {"resize_shorter": 32, "crop": 32}, "license": "Apache-2.0",
            "source": {"note": "version 2"},
        }
        v2 = ModelRegistry(engine, PackageStore(settings.packages_dir)).register(
            TINY, tmp_path / "src", fields, actor="tests").version
    finally:
        engine.dispose()
    (Path(v2.path) / "labels.txt").write_text("tampered\n")  # version 2's package is broken

    async def ask() -> Exception | None:
        asker = LocalAsker(local_core(settings), TINY, AskOptions(version=2))
        try:
            await asker.start()
            await asker.ask(photos["coffee"])
        except Exception as exc:
            return exc
        finally:
            await asker.close()
        return None

    failure = asyncio.run(ask())
    # The model's fault, not the image's: every good image would be quarantined with it.
    assert isinstance(failure, ConfigError), failure
    assert "labels.txt was modified" in failure.message
