"""Server processes for ``argus serve --workers N``: N copies of the server, each with its own
models and event loop, sharing the port through SO_REUSEPORT (the kernel spreads connections).

Listening sockets are created with ``IPPROTO_TCP`` explicitly: asyncio only sets TCP_NODELAY on
accepted connections whose socket says so, and a bare ``socket(AF_INET, SOCK_STREAM)`` (what
uvicorn's ``--workers`` uses) leaves Nagle on, which costs a lone client ~40 ms per request.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)


def make_listener(host: str, port: int, reuse_port: bool = False, backlog: int = 2048
                  ) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def run_workers(count: int, target: Callable[..., Any], args: tuple[Any, ...] = (),
                restart: bool = True) -> int:
    """Run ``target(index, occupancy, *args)`` in ``count`` processes until SIGINT/SIGTERM;
    a worker that dies unexpectedly is restarted. ``occupancy`` is a shared array with a slot
    per worker for :mod:`argus.engines.occupancy`. Returns the exit code for the parent."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False
    occupancy = ctx.Array("i", count, lock=False)

    def start(index: int) -> BaseProcess:
        occupancy[index] = 0  # a worker that died mid-request must not leave its count behind
        proc = ctx.Process(
            target=target, args=(index, occupancy, *args), name=f"argus-worker-{index}"
        )
        proc.start()
        return proc

    procs = {i: start(i) for i in range(count)}

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(0.2)
            if stopping:
                deadline = time.monotonic() + 30
                for proc in procs.values():
                    proc.join(max(0.1, deadline - time.monotonic()))
                    if proc.is_alive():
                        proc.kill()
                return 0
            for i, proc in list(procs.items()):
                if not proc.is_alive():
                    if not restart:
                        stop(signal.SIGTERM, None)
                        break
                    log.warning("worker %d exited with %s; restarting it", i, proc.exitcode)
                    procs[i] = start(i)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
