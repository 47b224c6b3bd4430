"""How long a REST connection may take to say what it wants: uvicorn bounds only the idle time
after a response (``timeout_keep_alive``), so a connection that never sends a request, sends
its headers a byte at a time (slowloris) or trickles its body would be held forever. This
protocol closes it when the headers are not complete ``header_timeout`` seconds after the
connection opened or the request's first byte arrived, and when the body is not complete
``body_timeout`` seconds after its headers (the application then sees the client as gone)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines (see the module)."""

    header_timeout = 10.0
    body_timeout = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_headers = True

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)  # a connection that never sends is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers and self._deadline is None:  # a keep-alive's next request
            self._arm(self.header_timeout)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._disarm()  # uvicorn's keep-alive timer bounds the idle time from here
        self._awaiting_headers = True
        super().on_response_complete()


def guarded_protocol(header_timeout: float, body_timeout: float) -> type[GuardedHttpTools]:
    """The protocol class for one server's settings."""
    return type(
        "GuardedHttpTools",
        (GuardedHttpTools,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
