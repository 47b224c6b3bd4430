"""Argus in the test process: one event loop on a thread of its own, which a module-scoped
fixture keeps for as long as its app or gRPC server lives (loaded models and their batching
tasks belong to the loop they were loaded on), and sync helpers that call into it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@contextlib.contextmanager
def running_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    try:
        yield loop
    finally:
        loop.close()


class AppClient:
    """A FastAPI app served in process through httpx's ASGI transport, with its lifespan
    entered (start-up and shutdown run as under a server). Calls are synchronous."""

    def __init__(self, app: FastAPI, loop: LoopThread, raise_app_exceptions: bool = True
                 ) -> None:
        self.app = app
        self.loop = loop
        self._lifespan = app.router.lifespan_context(app)
        loop.run(self._lifespan.__aenter__())
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://argus",
                                        timeout=60)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run(self.client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def wait_ready(self) -> None:
        """Wait for the lifespan's preload (the app reports ready once it is done)."""

        async def ready() -> None:
            while (await self.client.get("/v2/health/ready")).status_code != 200:
                await asyncio.sleep(0.02)

        self.loop.run(ready())

    def close(self) -> None:
        self.loop.run(self.client.aclose())
        self.loop.run(self._lifespan.__aexit__(None, None, None))


class PortServer:
    """An ASGI app served by uvicorn on a free loopback port, on the loop's thread (uvicorn
    leaves signals alone off the main thread), lifespan included."""

    def __init__(self, app: Any, loop: LoopThread) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.serving = asyncio.run_coroutine_threadsafe(
            self.server.serve(sockets=[self.sock]), loop.loop
        )
        deadline = time.monotonic() + 60
        while not self.server.started:
            if self.serving.done() or time.monotonic() > deadline:
                self.serving.result(0)  # raises what stopped it
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.serving.result(60)
        self.sock.close()


def copy_home(source: Path, dest: Path) -> Path:
    """A private copy of an ARGUS_HOME that tests may change."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    return dest
