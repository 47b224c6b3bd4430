"""What a REST request still in flight gets when the server stops and its grace runs out: a
503 with ``Retry-After`` (the client may retry on another server), not the 500 and traceback
uvicorn gives a task it cancels. :class:`Drain` is told by the server when the grace is over;
:class:`DrainMiddleware` answers for every request that has not started its response by then
(a response already under way is left to finish or to be cut by uvicorn)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from argus.errors import DRAIN_CANCEL, Overloaded
from argus.http.errors import error_response

RETRY_AFTER_S = 1.0


class Drain:
    """The requests in flight (their tasks, and whether each has started its response)."""

    def __init__(self) -> None:
        self.expired = False
        self._inflight: dict[asyncio.Task[object], list[bool]] = {}

    def expire(self) -> None:
        """The grace is over: every request that has not begun its response is answered 503."""
        self.expired = True
        for task, started in list(self._inflight.items()):
            if not started[0]:
                task.cancel(DRAIN_CANCEL)


class DrainMiddleware:
    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            Overloaded("the server is shutting down; retry the request", RETRY_AFTER_S)
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.expired:
            await self._refuse(scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None:  # not run by a server's task (never under uvicorn)
            await self.app(scope, receive, send)
            return
        started = [False]

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        inflight = self.drain._inflight
        inflight[task] = started
        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            # Ours when the grace is over and nothing was sent (uvicorn cancels only later,
            # and a request that arrives after the grace is refused above).
            if started[0] or not self.drain.expired:
                raise
            task.uncancel()  # our cancel, answered here: the request ends normally
            await self._refuse(scope, receive, send)
        finally:
            inflight.pop(task, None)
