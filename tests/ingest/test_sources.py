"""argus.ingest.sources in process: which files a folder hands on and what each outcome does to
them; what a Redis stream entry may point at, how its untrusted name is made safe, and that an
entry is acknowledged only when its outcome is stored (a retry comes round again)."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from argus.ingest.askers import BadImage, TryLater
from argus.ingest.sources import FolderSource, Item, RedisSource
from tests.conftest import free_port

FOLDER = {
    "a.jpg": b"a", "sub/b.png": b"b", "sub/deeper/c.webp": b"c",  # handed on
    ".hidden.jpg": b"h", ".cache/d.jpg": b"d", "e.jpg.part": b"e", "f.tmp": b"f",
    "g.jpg~": b"g", "h.crdownload": b"h",  # never
}


def fill(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


async def take(items: AsyncIterator[Item], count: int) -> list[Item]:
    taken: list[Item] = []
    async for item in items:
        taken.append(item)
        if len(taken) == count:
            break
    return taken


@pytest.mark.parametrize("remove_done", [False, True], ids=["keep", "remove-done"])
def test_a_folder_hands_on_its_files_once_and_outcomes_decide_their_fate(
    tmp_path: Path, remove_done: bool
) -> None:
    fill(tmp_path, FOLDER)
    source = FolderSource(tmp_path, settle_seconds=0, remove_done=remove_done, watch=False)
    outcomes = {"a.jpg": "done", "sub/b.png": "quarantined", "sub/deeper/c.webp": "retry"}

    async def run() -> dict[str, bytes]:
        read: dict[str, bytes] = {}
        async for item in source.items(asyncio.Event()):
            assert item.origin == str(tmp_path / item.name)
            read[item.name] = await item.read()
            await item.finish(outcomes[item.name])
        return read

    assert asyncio.run(run()) == {name: FOLDER[name] for name in outcomes}
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    gone = {"sub/b.png", "a.jpg"} if remove_done else {"sub/b.png"}
    assert left == set(FOLDER) - gone
    assert source.backlog() == 0


def test_a_watched_folder_hands_on_a_new_file_under_its_final_name(tmp_path: Path) -> None:
    fill(tmp_path, {"old.jpg": b"old"})
    source = FolderSource(tmp_path, settle_seconds=0.1, watch=True)

    async def run() -> list[str]:
        stop = asyncio.Event()
        items = source.items(stop)
        names = [item.name for item in await take(items, 1)]
        part = tmp_path / ".new.jpg.part"  # how a careful producer writes: hidden, then renamed
        part.write_bytes(b"new")
        part.rename(tmp_path / "new.jpg")
        names += [item.name for item in await asyncio.wait_for(take(items, 1), 30)]
        stop.set()
        assert [item async for item in items] == []  # a set stop event ends the source
        return names

    assert asyncio.run(run()) == ["old.jpg", "new.jpg"]


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("ARGUS_TEST_REDIS_URL")
    if not url:
        pytest.skip("ARGUS_TEST_REDIS_URL is not set (CI sets it)")
    return url


@pytest.fixture
def stream(redis_url: str) -> Iterator[str]:
    import redis

    name = f"argus-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name)
    client.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP file store on a loopback port, serving ``tmp_path/store``."""
    root = tmp_path / "store"
    root.mkdir()
    (root / "kept.jpg").write_bytes(b"from the store")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.redis
def test_a_stream_entry_is_read_named_safely_and_acknowledged_when_stored(
    redis_url: str, stream: str, store: str, tmp_path: Path
) -> None:
    import redis

    allowed = tmp_path / "shared"
    allowed.mkdir()
    (allowed / "shared.png").write_bytes(b"from the shared folder")
    dead = f"http://127.0.0.1:{free_port()}/"
    entries: list[tuple[dict[str, Any], Any]] = [
        ({"data": b"raw bytes", "name": "../../etc/passwd"}, b"raw bytes"),
        ({"data": b"hidden", "name": "..profile"}, b"hidden"),
        ({"data": b"spaces", "name": "my photo (1).jpg"}, b"spaces"),
        ({"path": str(allowed / "shared.png")}, b"from the shared folder"),
        ({"url": f"{store}kept.jpg"}, b"from the store"),
        ({"path": "/etc/hostname"}, (BadImage, "outside the allowed folders")),
        ({"path": str(allowed / "gone.png")}, (BadImage, "cannot read")),
        ({"url": f"{store}missing.jpg"}, (BadImage, "the store answered 404")),
        ({"url": "http://elsewhere.example/x.jpg"}, (BadImage, "not under an allowed store")),
        ({"url": f"{dead}x.jpg"}, (TryLater, "the store did not answer")),
        ({"note": "no image here"}, (BadImage, "none of the fields data, path or url")),
    ]
    client = redis.Redis.from_url(redis_url)
    ids = [client.xadd(stream, fields).decode() for fields, _ in entries]
    source = RedisSource(redis_url, stream, consumer="tests", claim_idle=0.3,
                         allow_paths=[allowed], allow_urls=[store, dead], once=True)
    names: dict[str, str] = {}
    seen: list[str] = []

    async def run() -> None:
        try:
            async for item in source.items(asyncio.Event()):
                eid = item.origin.removeprefix(f"{stream}/")
                seen.append(eid)
                names[eid] = item.name
                expected = entries[ids.index(eid)][1]
                if isinstance(expected, bytes):
                    assert await item.read() == expected
                else:
                    with pytest.raises(expected[0], match=expected[1]):
                        await item.read()
                # The first entry is left for later once; everything else is stored.
                retry = eid == ids[0] and seen.count(eid) == 1
                await item.finish("retry" if retry else "done")
        finally:
            await source.close()

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
        assert sorted(seen) == sorted([*ids, ids[0]])  # the retried entry came round again
        assert client.xpending(stream, "argus-ingest")["pending"] == 0
    finally:
        client.close()
    assert names[ids[0]] == f"{ids[0]}-passwd"
    assert names[ids[1]] == f"{ids[1]}-profile"
    assert names[ids[2]] == f"{ids[2]}-my_photo__1_.jpg"
    assert names[ids[3]] == f"{ids[3]}-shared.png"
    assert names[ids[4]] == f"{ids[4]}-kept.jpg"
    assert names[ids[-1]] == ids[-1]
    assert all("/" not in name for name in names.values())


def test_a_link_that_leads_out_of_the_folder_is_refused_without_reading_its_target(
    tmp_path: Path,
) -> None:
    incoming, outside = tmp_path / "incoming", tmp_path / "private"
    incoming.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"private bytes")
    fill(incoming, {"inside.jpg": b"mine"})
    (incoming / "out.jpg").symlink_to(outside / "secret.jpg")
    (incoming / "twin.jpg").symlink_to(incoming / "inside.jpg")  # a link inside stays fine
    source = FolderSource(incoming, settle_seconds=0, watch=False)

    async def run() -> dict[str, bytes | str]:
        read: dict[str, bytes | str] = {}
        async for item in source.items(asyncio.Event()):
            try:
                read[item.name] = await item.read()
            except BadImage as exc:
                read[item.name] = exc.reason
            await item.finish("done")
        return read

    read = asyncio.run(run())
    assert read["inside.jpg"] == read["twin.jpg"] == b"mine"
    assert read["out.jpg"] == "a symbolic link that leads out of the source folder; not read"
