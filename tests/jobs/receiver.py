"""A real HTTP server on loopback that receives job callbacks (and can refuse the first few)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refuse_first: int = 0
    """Answer this many POSTs with 503 before accepting."""
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def receiver(refuse_first: int = 0) -> Iterator[Received]:
    got = Received(url="", refuse_first=refuse_first)

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request (a killed worker): not a post
                return
            with got.lock:
                refuse = got.refuse_first > 0
                if refuse:
                    got.refuse_first -= 1
                else:
                    got.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(503 if refuse else 204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/done"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
