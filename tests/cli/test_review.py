"""`argus review` as a user runs it in an 80-column terminal, and `argus serve
--keep-uncertain` keeping an image a client sent over a real port."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from argus.contracts import AskOptions
from argus.server import local_core
from argus.settings import Settings
from tests.cli.test_registry_commands import fits, run
from tests.conftest import start_server
from tests.review.images import GREY, RED, greys
from tests.tiny_model import TINY, register_tiny


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose tiny classifier kept three grey images (and not a red one)."""
    settings = Settings(home=tmp_path / "home", keep_uncertain=0.6, intra_op_threads=1)
    register_tiny(settings, tmp_path / "tiny")

    async def ask() -> None:
        core = local_core(settings)
        try:
            for data in [*greys(3), RED]:
                await core.ask(TINY, data, AskOptions(source="cli"))
            await core.keeper.idle()
        finally:
            await core.close()

    asyncio.run(ask())
    return settings.home


def test_list_label_export_and_discard(home: Path, tmp_path: Path) -> None:
    first, second, third = (sha(data) for data in greys(3))
    listed = run(home, "review", "list").stdout
    assert fits(listed), listed
    assert all(d[:12] in listed for d in (first, second, third)) and sha(RED)[:12] not in listed
    assert "3 image(s)" in listed

    labelled = json.loads(run(home, "review", "label", first[:12], "grey", "--json").stdout)
    assert labelled["digest"] == first
    assert (home / "datasets" / TINY / "grey" / f"{first}.png").is_file()
    run(home, "review", "label", second, "red", "--data", str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "red" / f"{second}.png").is_file()
    refused = run(home, "review", "label", third, "../up", ok=False)
    assert refused.returncode == 2 and "path separator" in refused.stderr
    unknown = run(home, "review", "label", "0" * 64, "grey", ok=False)
    assert unknown.returncode == 2 and "no kept image" in unknown.stderr

    only = json.loads(run(home, "review", "list", "--labelled", "--json").stdout)
    assert {i["digest"] for i in only} == {first, second}

    out, table = tmp_path / "export", tmp_path / "export.csv"
    run(home, "review", "export", "--to", str(out), "--csv", str(table))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted([f"grey/{first}.png", f"red/{second}.png"])
    rows = list(csv.reader(table.open()))
    assert rows[0] == ["path", "label"] and len(rows) == 3
    everything = tmp_path / "everything"
    run(home, "review", "export", "--all", "--to", str(everything))
    assert len([p for p in everything.rglob("*.png")]) == 3
    assert run(home, "review", "export", ok=False).returncode == 2

    run(home, "review", "discard", third[:12])
    assert len(json.loads(run(home, "review", "list", "--json").stdout)) == 2


def test_serve_keeps_uncertain_images_it_answers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    register_tiny(settings, tmp_path / "tiny")
    server = start_server(settings.home, "--keep-uncertain", "0.6",
                          env={"ARGUS_INTRA_OP_THREADS": "1"})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post(f"/v1/questions/{TINY}", content=GREY).status_code == 200
            assert client.post(f"/v1/questions/{TINY}", content=RED).status_code == 200
            deadline = time.monotonic() + 30  # kept after the answer, by a background task
            kept: list[dict[str, str]] = []
            while not kept and time.monotonic() < deadline:
                kept = client.get("/v1/review").json()
                time.sleep(0.05)
    finally:
        server.stop()
    assert [item["digest"] for item in kept] == [sha(GREY)]
    refused = run(settings.home, "serve", "--keep-uncertain", "1.5", ok=False)
    assert refused.returncode == 2
