"""Alias moves reach a running server without restarts or failed requests, and servers on one
database see the same aliases and pins (the resolution cache drops what the registry moved)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import yaml

from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from tests.conftest import start_server


def registry_for(home: Path) -> ModelRegistry:
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    return ModelRegistry(engine, PackageStore(settings.packages_dir))


def add_second_version(home: Path, tmp_path: Path) -> int:
    """Version 2 of efficientnet-lite0: same network, a manifest that says it is a retrain."""
    registry = registry_for(home)
    v1 = registry.resolve("efficientnet-lite0", version=1)
    src = tmp_path / "v2"
    shutil.copytree(v1.path, src)
    manifest = yaml.safe_load((src / "argus.yaml").read_text())
    (src / "argus.yaml").unlink()
    fields = {k: v for k, v in manifest.items() if k not in ("files", "format")}
    fields["description"] += " (retrained)"
    result = registry.register("efficientnet-lite0", src, fields, actor="test", parent_version=1)
    registry.engine.dispose()
    return result.version.number


def test_alias_moves_under_load_fail_nothing(home_copy: Path, tmp_path: Path,
                                             photos: dict[str, bytes]) -> None:
    assert add_second_version(home_copy, tmp_path) == 2
    server = start_server(home_copy)
    try:
        server.wait_ready()
        base = f"{server.url}/v1/models/efficientnet-lite0"
        assert httpx.post(f"{base}/promote", json={"version": 1}).status_code == 200
        moves: list[tuple[float, int]] = [(time.monotonic(), 1)]
        answers: list[tuple[float, float, int]] = []
        failures: list[str] = []
        stop = threading.Event()

        def load(image: bytes) -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    t0 = time.monotonic()
                    r = client.post(f"{server.url}/v1/questions/labels", content=image)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                        continue
                    answers.append((t0, time.monotonic(), r.json()["models"][0]["version"]))

        threads = [threading.Thread(target=load, args=(photos[n],))
                   for n in ("coffee", "chelsea", "china")]
        for t in threads:
            t.start()
        with httpx.Client(timeout=30) as admin:
            for i in range(8):
                time.sleep(0.6)
                target = 2 if i % 2 == 0 else 1
                r = admin.post(f"{base}/promote", json={"version": target})
                assert r.status_code == 200, r.text
                moves.append((time.monotonic(), target))
        time.sleep(1.2)
        stop.set()
        for t in threads:
            t.join()
        assert failures == []
        assert len(answers) > 40
        assert {v for _, _, v in answers} == {1, 2}

        def current_between(start: float, end: float) -> set[int]:
            """Versions that were production at some moment in [start - 1 s, end]:
            a server notices a move within a second."""
            out = set()
            for i, (t, v) in enumerate(moves):
                next_t = moves[i + 1][0] if i + 1 < len(moves) else float("inf")
                if t <= end and next_t >= start - 1.0:
                    out.add(v)
            return out

        wrong = [(s, e, v) for s, e, v in answers if v not in current_between(s, e)]
        assert wrong == []
        # after the last move settles, every answer uses it
        settled = [v for s, _, v in answers if s > moves[-1][0] + 1.0]
        assert settled and set(settled) == {moves[-1][1]}
        history = httpx.get(f"{base}/history").json()
        assert [e["to_version"] for e in history if e["action"] == "promote"][-1] == moves[-1][1]
    finally:
        server.stop()


def test_two_servers_on_one_postgres_see_the_same_aliases_and_pins(
    postgres_url: str, tmp_path: Path, photos: dict[str, bytes]
) -> None:
    import os
    import subprocess

    from tests.conftest import ARGUS

    home = tmp_path / "home"
    env = {**os.environ, "ARGUS_HOME": str(home), "ARGUS_DATABASE_URL": postgres_url}
    subprocess.run([ARGUS, "models", "pull", "efficientnet-lite0"], env=env, check=True,
                   capture_output=True)
    registry = ModelRegistry(make_engine(postgres_url), PackageStore(home / "packages"))
    migrate(registry.engine)
    v1 = registry.resolve("efficientnet-lite0", version=1)
    src = tmp_path / "v2"
    shutil.copytree(v1.path, src)
    manifest = yaml.safe_load((src / "argus.yaml").read_text())
    (src / "argus.yaml").unlink()
    fields = {k: v for k, v in manifest.items() if k not in ("files", "format")}
    fields["description"] += " (retrained)"
    registry.register("efficientnet-lite0", src, fields)
    registry.add_app("kiosk")
    registry.pin("kiosk", "efficientnet-lite0", version=1)
    registry.engine.dispose()

    servers = [start_server(home, env={"ARGUS_DATABASE_URL": postgres_url}) for _ in range(2)]
    try:
        for s in servers:
            s.wait_ready()

        def versions(headers: dict[str, str] | None = None) -> list[int]:
            return [
                httpx.post(f"{s.url}/v1/questions/labels", content=photos["coffee"],
                           headers=headers or {}, timeout=30).json()["models"][0]["version"]
                for s in servers
            ]

        assert versions() == [1, 1]
        r = httpx.post(f"{servers[0].url}/v1/models/efficientnet-lite0/promote",
                       json={"version": 2})
        assert r.status_code == 200
        time.sleep(1.0)
        assert versions() == [2, 2]
        assert versions({"X-Argus-App": "kiosk"}) == [1, 1]
        r = httpx.post(f"{servers[1].url}/v1/models/efficientnet-lite0/rollback", json={})
        assert r.status_code == 200 and r.json()["version"] == 1
        time.sleep(1.0)
        assert versions() == [1, 1]
    finally:
        for s in servers:
            s.stop()
