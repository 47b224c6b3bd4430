"""What a running pipeline shows: a Rich line (rate, done, skipped, quarantined, backlog) for
people, or one JSON object per event on stdout for machines (``--json-log``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from argus.ingest.pipeline import Stats


class JsonLog:
    """One JSON line per event, plus a ``stats`` line every ``every`` seconds."""

    def __init__(self, stats: Callable[[], Stats], backlog: Callable[[], int],
                 every: float = 5.0) -> None:
        self.stats = stats
        self.backlog = backlog
        self.every = every
        self._last = time.monotonic()

    def emit(self, event: dict[str, Any]) -> None:
        self._write({"at": round(time.time(), 3), **event})
        if time.monotonic() - self._last >= self.every:
            self.summary("stats")

    def summary(self, kind: str) -> None:
        self._last = time.monotonic()
        self._write({"at": round(time.time(), 3), "event": kind, **self.stats().to_dict(),
                     "backlog": self.backlog()})

    @staticmethod
    def _write(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()


class Display:
    """A live status line on stderr; quarantined files are printed as they happen."""

    def __init__(self, title: str, stats: Callable[[], Stats], backlog: Callable[[], int]
                 ) -> None:
        self.title = title
        self.stats = stats
        self.backlog = backlog
        self.console = Console(stderr=True)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         get_renderable=self._render, transient=False)

    def _render(self) -> Table:
        s = self.stats()
        table = Table.grid(padding=(0, 2))
        table.add_row(
            f"[bold]{self.title}[/]",
            f"[cyan]{s.rate():.1f}[/] img/s",
            f"[green]{s.done}[/] done",
            f"{s.skipped} skipped",
            f"[yellow]{s.quarantined}[/] quarantined",
            f"{s.retry} to retry",
            f"{self.backlog()} waiting",
        )
        return table

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("event") == "quarantined":
            self.console.print(
                f"[yellow]quarantined[/] {event['name']}: {event.get('reason', '')}",
                highlight=False,
            )

    def __enter__(self) -> Display:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()
