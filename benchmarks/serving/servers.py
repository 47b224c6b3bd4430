"""Servers under test as subprocesses: start, wait until ready, watch RSS and CPU, stop.

Each server runs in its own session (process group), so stopping it reaches its workers too;
RSS and CPU are read from /proc for the server process and all its descendants.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class ServerSpec:
    """How to start one system and talk to it."""

    name: str
    command: list[str]
    predict_path: str
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    body_format: str = "raw"  # see loadgen.encode_bodies
    settings: dict[str, Any] = field(default_factory=dict)  # recorded with the results
    ready_timeout_s: float = 180.0


class ServerFailed(RuntimeError):
    """The server exited or never became ready; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def _stat_fields(pid: int) -> list[str]:
    return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]).split()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (those that are gone count as 0)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    fields = _stat_fields(pid)
    return int(fields[21]) * PAGE_KB / 1024  # rss in pages (field 24 of stat)


def command_line(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    return raw.decode(errors="replace")


class RunningServer:
    def __init__(self, spec: ServerSpec, port: int, log_path: Path) -> None:
        self.spec = spec
        self.port = port
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def predict_url(self) -> str:
        return self.base_url + self.spec.predict_path

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self) -> float:
        """Seconds until the readiness path answered 200."""
        start = time.perf_counter()
        deadline = start + self.spec.ready_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise ServerFailed(
                        f"{self.spec.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(self.base_url + self.spec.ready_path).status_code == 200:
                        return time.perf_counter() - start
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise ServerFailed(
            f"{self.spec.name} not ready after {self.spec.ready_timeout_s:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())

    def memory(self) -> list[dict[str, Any]]:
        """RSS of the server process and each descendant."""
        rows = []
        for pid in self.pids():
            try:
                rows.append(
                    {"pid": pid, "rss_mb": round(rss_mb(pid), 1), "cmd": command_line(pid)[:120]}
                )
            except OSError:
                continue
        return rows

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Workers left behind in the group (their parent gone first) are ended as well.
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@contextmanager
def serving(spec: ServerSpec, log_dir: Path) -> Iterator[RunningServer]:
    """Start ``spec`` on a free port: ``{port}`` in its command or environment becomes that
    port, each ``{free_port}`` another free one (for side ports such as gRPC or metrics)."""
    port = free_port()

    def fill(text: str) -> str:
        return text.replace("{port}", str(port)).replace("{free_port}", str(free_port()))

    started = replace(
        spec,
        command=[fill(part) for part in spec.command],
        env={name: fill(value) for name, value in spec.env.items()},
    )
    server = RunningServer(started, port, log_dir / f"{spec.name}.log")
    try:
        yield server
    finally:
        server.stop()
