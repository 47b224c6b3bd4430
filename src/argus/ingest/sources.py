"""Where a pipeline's images come from.

``dir:INCOMING``: the files already there (what arrived while the pipeline was down) and then
every file that appears, each handed on once its size and time stop changing.
``redis:STREAM``: a Redis Stream read through a consumer group; an entry is acknowledged only
after its outcome is stored, and entries a crashed consumer left pending are claimed over with
XAUTOCLAIM once they have been idle for ``claim_idle`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argus.ingest.askers import BadImage

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


@dataclass
class Item:
    """One image to ingest: ``read`` fetches its bytes (BadImage when it cannot be had),
    ``finish`` tells the source the outcome is stored (done, skipped or quarantined)."""

    name: str
    origin: str
    read: Callable[[], Awaitable[bytes]]
    finish: Callable[[str], Awaitable[None]]


class FolderSource:
    def __init__(
        self,
        root: Path,
        *,
        settle_seconds: float = 0.5,
        remove_done: bool = False,
        watch: bool = True,
    ) -> None:
        if not root.is_dir():
            from argus.errors import ConfigError

            raise ConfigError(f"the source folder {root} does not exist")
        self.root = root.resolve()
        self.settle = settle_seconds
        self.remove_done = remove_done
        self.watch = watch
        self.url = f"dir:{self.root}"
        self._known: set[Path] = set()  # seen and not finished
        self._ready: asyncio.Queue[Path] = asyncio.Queue()

    def backlog(self) -> int:
        return len(self._known)

    def _wanted(self, path: Path) -> bool:
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return False
        hidden = any(p.startswith(".") for p in parts)
        return not hidden and not path.name.endswith(IGNORED_SUFFIXES)

    def _offer(self, path: Path) -> None:
        if path in self._known or not self._wanted(path):
            return
        try:
            if not path.is_file():
                return
        except OSError:
            return
        self._known.add(path)
        asyncio.get_running_loop().create_task(self._settle(path))

    async def _settle(self, path: Path) -> None:
        """Hand the file on once it has stopped changing for ``settle`` seconds."""
        last: tuple[int, int] | None = None
        while True:
            try:
                st = path.stat()
            except FileNotFoundError:
                self._known.discard(path)
                return
            now = (st.st_size, st.st_mtime_ns)
            age = time.time() - st.st_mtime
            if now == last and age >= self.settle:
                await self._ready.put(path)
                return
            last = now
            await asyncio.sleep(max(0.05, self.settle - age) if age < self.settle else 0.05)

    def _scan(self) -> None:
        found: list[tuple[float, Path]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                p = Path(dirpath) / f
                try:
                    found.append((p.stat().st_mtime, p))
                except OSError:
                    continue
        for _, p in sorted(found):
            self._offer(p)

    async def _watch(self, stop: asyncio.Event) -> None:
        import watchfiles

        async for changes in watchfiles.awatch(
            self.root, stop_event=stop, debounce=200, step=50, recursive=True
        ):
            for change, raw in changes:
                if change in (watchfiles.Change.added, watchfiles.Change.modified):
                    self._offer(Path(raw))

    def _inside(self, path: Path) -> Path:
        """The file ``path`` really is, refused when a link leads out of the folder: a drop
        folder must not become a way to read (and copy to the sink) any file the service can."""
        real = path.resolve()
        if not real.is_relative_to(self.root):
            raise BadImage("a symbolic link that leads out of the source folder; not read")
        return real

    def _item(self, path: Path) -> Item:
        async def read() -> bytes:
            try:
                real = self._inside(path)
                return await asyncio.to_thread(real.read_bytes)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise BadImage(f"cannot read the file: {exc.strerror}") from exc

        async def finish(outcome: str) -> None:
            if outcome == "quarantined" or (self.remove_done and outcome in ("done", "skipped")):
                path.unlink(missing_ok=True)
            self._known.discard(path)
            if outcome == "retry":  # the service was away: offer the file again a bit later
                asyncio.get_running_loop().call_later(5.0, self._offer, path)

        return Item(path.relative_to(self.root).as_posix(), str(path), read, finish)

    async def items(self, stop: asyncio.Event) -> AsyncIterator[Item]:
        watcher = asyncio.create_task(self._watch(stop)) if self.watch else None
        if watcher is not None:
            await asyncio.sleep(0.1)  # let the watcher start before the scan, so nothing slips
        self._scan()
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if watcher is None and not self._known and self._ready.empty():
                    return  # --once: everything that was there is handled
                getter = asyncio.ensure_future(self._ready.get())
                await asyncio.wait([getter, stop_wait], timeout=1.0 if watcher else 0.1,
                                   return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                yield self._item(getter.result())
        finally:
            stop_wait.cancel()
            if watcher is not None:
                stop.set()
                await asyncio.gather(watcher, return_exceptions=True)


class RedisSource:
    """Entries carry ``path`` (under an allowed folder), ``url`` (under an allowed prefix) or
    ``data`` (the bytes), and optionally ``name``."""

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        group: str = "argus-ingest",
        consumer: str | None = None,
        claim_idle: float = 60.0,
        allow_paths: list[Path] | None = None,
        allow_urls: list[str] | None = None,
        batch: int = 32,
        once: bool = False,
    ) -> None:
        import redis.asyncio as redis

        self.redis: Any = redis.Redis.from_url(url)
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = int(claim_idle * 1000)
        self.allow_paths = [p.resolve() for p in allow_paths or []]
        self.allow_urls = list(allow_urls or [])
        self.batch = batch
        self.once = once
        self.url = f"redis:{stream}"
        self._inflight: set[bytes] = set()
        self._backlog = 0
        self._http: Any = None

    def backlog(self) -> int:
        return self._backlog + len(self._inflight)

    async def _ensure_group(self) -> None:
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _refresh_backlog(self) -> None:
        try:
            for g in await self.redis.xinfo_groups(self.stream):
                if g.get("name") in (self.group, self.group.encode()):
                    pending = int(g.get("pending", 0)) - len(self._inflight)
                    self._backlog = int(g.get("lag") or 0) + max(0, pending)
        except Exception as exc:  # progress only; never stop ingest for it
            log.debug("no backlog figure: %s", exc)

    async def _fetch(self, entry_id: bytes, fields: dict[bytes, bytes]) -> Item:
        f = {k.decode(): v for k, v in fields.items()}
        name_raw = f.get("name")
        eid = entry_id.decode()
        name = name_raw.decode() if name_raw else ""

        async def read() -> bytes:
            if "data" in f:
                return f["data"]
            if "path" in f:
                return await self._read_path(f["path"].decode())
            if "url" in f:
                return await self._read_url(f["url"].decode())
            raise BadImage("the stream entry has none of the fields data, path or url")

        async def finish(outcome: str) -> None:
            # "retry": left pending, so XAUTOCLAIM hands it out again once it has been idle.
            if outcome != "retry":
                await self.redis.xack(self.stream, self.group, entry_id)
            self._inflight.discard(entry_id)

        if not name:
            for key in ("path", "url"):
                if key in f:
                    name = f[key].decode().rstrip("/").rsplit("/", 1)[-1]
                    break
        # Stream names are untrusted: one plain file name, no folders, no '..'.
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit("/", 1)[-1]).lstrip(".")[:120]
        name = f"{eid}-{name}" if name else eid
        self._inflight.add(entry_id)
        return Item(name, f"{self.stream}/{eid}", read, finish)

    async def _read_path(self, raw: str) -> bytes:
        path = Path(raw).resolve()
        if not any(path.is_relative_to(root) for root in self.allow_paths):
            raise BadImage(
                f"the path {raw} is outside the allowed folders (--allow-path); not read"
            )
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise BadImage(f"cannot read {raw}: {exc.strerror}") from exc

    async def _read_url(self, url: str) -> bytes:
        if not any(url.startswith(prefix) for prefix in self.allow_urls):
            raise BadImage(f"the URL {url} is not under an allowed store (--allow-url); not read")
        import httpx

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30.0, follow_redirects=False)
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            from argus.ingest.askers import TryLater

            raise TryLater(f"the store did not answer for {url}: {exc}") from exc
        if response.status_code != 200:
            raise BadImage(f"the store answered {response.status_code} for {url}")
        return bytes(response.content)

    async def _claim_abandoned(self) -> list[Item]:
        """Entries other consumers took and left idle too long (they crashed): ours now."""
        items: list[Item] = []
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, start, count=self.batch
            )
            start, entries = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:  # trimmed from the stream while pending: nothing left to do
                await self.redis.xack(self.stream, self.group, *deleted)
            for entry_id, fields in entries:
                if entry_id not in self._inflight and fields:
                    items.append(await self._fetch(entry_id, fields))
            if start in (b"0-0", "0-0") or len(items) >= self.batch:
                return items

    async def _read(self, entry_id: str, block: int | None) -> list[Item]:
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: entry_id}, count=self.batch, block=block
        )
        items: list[Item] = []
        for _stream, entries in reply or []:
            for eid, fields in entries:
                if eid not in self._inflight and fields:
                    items.append(await self._fetch(eid, fields))
        return items

    async def _keep_alive(self) -> None:
        """Reset the idle time of entries we are still working on, so no one claims them."""
        if self._inflight:
            await self.redis.xclaim(
                self.stream, self.group, self.consumer, 0, list(self._inflight), justid=True
            )

    async def items(self, stop: asyncio.Event) -> AsyncIterator[Item]:
        await self._ensure_group()
        # Our own pending entries first (we restarted under the same consumer name).
        own = await self._read("0", None)
        for item in own:
            yield item
        last_claim = 0.0
        last_alive = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - last_alive > self.claim_idle_ms / 3000:
                    await self._keep_alive()
                    last_alive = now
                batch: list[Item] = []
                if now - last_claim > min(5.0, self.claim_idle_ms / 2000):
                    batch = await self._claim_abandoned()
                    last_claim = now
                    await self._refresh_backlog()
                if not batch:
                    batch = await self._read(">", 500)
                for item in batch:
                    yield item
                if not batch and self.once and not self._inflight:
                    await self._refresh_backlog()
                    if self._backlog == 0:
                        return
        finally:
            if self._http is not None:
                await self._http.aclose()

    async def close(self) -> None:
        await self.redis.aclose()
