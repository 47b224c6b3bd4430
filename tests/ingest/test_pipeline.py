"""argus.ingest.pipeline in process (folder source, tiny model, dir sink): what each outcome
leaves behind. A file is stored, then recorded, then let go; a sink write that fails leaves no
record, so the file comes round again; a service that is away leaves every file for later;
settings that cannot work stop the pipeline instead of quarantining good files. The CLI, a
kill midway and Redis are covered end to end by the other tests of this folder."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from argus.contracts import AskOptions
from argus.db.engine import make_engine, migrate
from argus.errors import ConfigError
from argus.ingest.askers import Asker, GatewayAsker, LocalAsker
from argus.ingest.checkpoint import Checkpoint, pipeline_id
from argus.ingest.pipeline import Pipeline
from argus.ingest.sinks import DirSink
from argus.ingest.sources import FolderSource
from argus.server import local_core
from argus.settings import Settings
from tests.conftest import free_port
from tests.ingest.conftest import records_per_image, small_photos
from tests.tiny_model import TINY


class Run:
    """One ``--once`` pass of a pipeline over ``incoming`` into ``out``: its stats, events and
    raised error."""

    def __init__(self, settings: Settings, incoming: Path, out: Path, *,
                 gateway: str | None = None, **options: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.error: Exception | None = None
        chosen = AskOptions.parse(options, source="ingest")

        async def run() -> dict[str, Any]:
            asker: Asker
            if gateway is None:
                core = local_core(settings)
                asker, engine = LocalAsker(core, TINY, chosen), core.engine
                await asker.start()
            else:
                asker, engine = GatewayAsker(gateway, TINY, chosen), make_engine(settings.db_url)
                migrate(engine)
            sink = DirSink(out)
            pipeline = Pipeline(
                FolderSource(incoming, settle_seconds=0, watch=False), asker, sink,
                Checkpoint(engine, pipeline_id(TINY, sink.url)), TINY, concurrency=4,
                retries=0, on_event=self.events.append,
            )
            try:
                return (await pipeline.run()).to_dict()
            except ConfigError as exc:
                self.error = exc
                return pipeline.stats.to_dict()
            finally:
                await asker.close()
                if gateway is not None:
                    engine.dispose()

        self.stats = asyncio.run(run())

    def named(self, event: str) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.events if e["event"] == event}


@pytest.fixture
def incoming(tmp_path: Path, photos: dict[str, bytes]) -> dict[str, bytes]:
    """Six small real photos in ``tmp_path/in`` (two in a subfolder)."""
    files = dict(small_photos(photos, 6, seed=5))
    names = sorted(files)
    placed = {name if i < 4 else f"sub/{name}": files[name] for i, name in enumerate(names)}
    for name, data in placed.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(data)
    return placed


def stored(out: Path) -> set[str]:
    """Names that have an image and a sidecar in the sink."""
    return {p.relative_to(out).as_posix()[: -len(".json")] for p in out.rglob("*.json")}


def test_a_file_is_stored_then_recorded_then_let_go(
    tiny_home: Settings, tmp_path: Path, incoming: dict[str, bytes]
) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    blocked = sorted(incoming)[0]
    (out / blocked).mkdir(parents=True)  # the sink cannot write this image: a folder is there

    first = Run(tiny_home, inbox, out, top_k=2)
    assert (first.stats["done"], first.stats["retry"], first.stats["quarantined"]) == (5, 1, 0)
    assert first.named("retry")[blocked]["reason"].startswith("IsADirectoryError")
    assert stored(out) == set(incoming) - {blocked}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in incoming.items()}
    # No record for the file the sink could not take: it is not done, and it was not let go.
    assert set(records_per_image(tiny_home, TINY, out)) == {
        d for name, d in digests.items() if name != blocked
    }
    assert sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.*")) == sorted(incoming)
    for name, event in first.named("done").items():
        assert event["sha256"] == digests[name]
        sidecar = json.loads((out / f"{name}.json").read_text())
        assert (out / name).read_bytes() == incoming[name]
        assert (sidecar["file"], sidecar["origin"]) == (name, str(inbox / name))
        assert (sidecar["sha256"], sidecar["bytes"]) == (digests[name], len(incoming[name]))
        assert sidecar["question"] == TINY and len(sidecar["answer"]["labels"]) == 2
        assert sidecar["models"][0]["name"] == TINY and sidecar["image"]["sha256"] == digests[name]

    (out / blocked).rmdir()
    second = Run(tiny_home, inbox, out, top_k=2)
    assert set(second.named("done")) == {blocked}
    assert set(second.named("skipped")) == set(incoming) - {blocked}
    assert set(records_per_image(tiny_home, TINY, out).values()) == {1}
    assert stored(out) == set(incoming)


def test_a_service_that_is_away_leaves_every_file_for_later(
    tiny_home: Settings, tmp_path: Path, incoming: dict[str, bytes]
) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    away = Run(tiny_home, inbox, out, gateway=f"http://127.0.0.1:{free_port()}")
    assert (away.stats["done"], away.stats["retry"], away.stats["quarantined"]) == (0, 6, 0)
    assert away.error is None
    assert {e["reason"].split(":")[0] for e in away.events} == {"the gateway did not answer"}
    assert stored(out) == set() and not (out / "quarantine").exists()
    assert records_per_image(tiny_home, TINY, out) == {}
    assert sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.*")) == sorted(incoming)


def test_settings_that_cannot_work_stop_the_pipeline(
    tiny_home: Settings, tmp_path: Path, incoming: dict[str, bytes]
) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    stopped = Run(tiny_home, inbox, out, version=7)
    assert isinstance(stopped.error, ConfigError) and "no version 7" in stopped.error.message
    assert (stopped.stats["done"], stopped.stats["quarantined"]) == (0, 0)
    assert stored(out) == set() and not (out / "quarantine").exists()
    assert records_per_image(tiny_home, TINY, out) == {}
    assert sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.*")) == sorted(incoming)
