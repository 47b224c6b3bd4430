"""Two `argus ingest --source redis:…` consumers share a stream; one is killed with SIGKILL and
the other claims its pending entries (XAUTOCLAIM): every entry is processed exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from argus.settings import Settings
from tests.ingest.conftest import records_per_image, small_photos
from tests.ingest.test_folder_crash import Ingest

pytestmark = pytest.mark.redis


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


@pytest.mark.slow
def test_two_consumers_one_killed_every_entry_once(
    ingest_settings: Settings, photos: dict[str, bytes], tmp_path: Path, redis_url: str,
    stream: str,
) -> None:
    import redis

    allowed = tmp_path / "shared"
    allowed.mkdir()
    good = small_photos(photos, 300, seed=11)
    client = redis.Redis.from_url(redis_url)
    expected: dict[str, bytes] = {}
    bad: dict[str, str] = {}
    for i, (name, data) in enumerate(good):
        if i % 10 == 0:  # some entries carry a path into the shared folder instead of bytes
            (allowed / name).write_bytes(data)
            eid = client.xadd(stream, {"path": str(allowed / name)}).decode()
        else:
            eid = client.xadd(stream, {"data": data, "name": name}).decode()
        expected[f"{eid}-{name}"] = data
    for i in range(10):
        eid = client.xadd(stream, {"data": b"not an image %d" % i, "name": f"bad{i}.jpg"})
        bad[f"{eid.decode()}-bad{i}.jpg"] = "not an image"
    eid = client.xadd(stream, {"path": "/etc/hostname"}).decode()
    bad[f"{eid}-hostname"] = "outside the allowed folders"

    out = tmp_path / "out"
    args = ["--source", f"redis:{stream}", "--redis-url", redis_url, "--question", "tiny",
            "--sink", f"dir:{out}", "--claim-idle", "2", "--allow-path", str(allowed)]
    a = Ingest(ingest_settings, *args, "--consumer", "a")
    b = Ingest(ingest_settings, *args, "--consumer", "b")
    try:
        a.wait_for("done", 30)
        a.kill()
        pending = client.xpending(stream, "argus-ingest")
        held_by_a = {c["name"]: c["pending"] for c in pending["consumers"]}.get(b"a", 0)
        assert held_by_a > 0, "the killed consumer held nothing: the takeover is untested"
        total = len(expected) + len(bad)
        b.wait_for("done", 1)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            finished = len(list(out.glob("*.json"))) + len(
                list((out / "quarantine").glob("*.reason.txt"))
            )
            if finished >= total and client.xpending(stream, "argus-ingest")["pending"] == 0:
                break
            time.sleep(0.1)
        assert client.xpending(stream, "argus-ingest")["pending"] == 0
    finally:
        assert b.stop() == 0, "".join(b.lines[-30:])
        client.close()

    sidecars = {p.name[: -len(".json")] for p in out.glob("*.json")}
    assert sidecars == set(expected)
    for name, data in expected.items():
        assert (out / name).read_bytes() == data
        assert json.loads((out / f"{name}.json").read_text())["sha256"] == hashlib.sha256(
            data
        ).hexdigest()
    for name, why in bad.items():
        assert why in (out / "quarantine" / f"{name}.reason.txt").read_text()
    assert not (out / "quarantine" / next(n for n in bad if n.endswith("hostname"))).exists()
    per_digest = records_per_image(ingest_settings, "tiny", out)
    assert set(per_digest) == {hashlib.sha256(d).hexdigest() for d in expected.values()}
    assert set(per_digest.values()) == {1}
