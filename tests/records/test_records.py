"""Prediction records on SQLite and PostgreSQL: written off the event loop, read read-only."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from argus.contracts import AskOptions
from argus.core import Core
from argus.errors import BadInput
from argus.records import check_where, find_records, query_records
from argus.server import local_core
from argus.settings import Settings
from tests.asking import ask_json
from tests.graphs.conftest import register_tint


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), colour, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


GREEN, RED = png((10, 200, 40)), png((220, 30, 30))


def json_label(dialect: str) -> str:
    """The first label of the answer, in each database's JSON syntax."""
    if dialect == "sqlite":
        return "json_extract(answer, '$.labels[0].label')"
    return "answer->'labels'->0->>'label'"


def test_records_are_written_and_queried(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_tint(home, db_url)

    async def main() -> tuple[Core, list[dict[str, Any]]]:
        core = local_core(Settings(home=home, database_url=db_url))
        core.registry.add_app("shop")  # an application without pins: production versions
        answers = [
            await ask_json(
                core, "tint", GREEN, AskOptions(record=True, source="job", job_id="j-1")
            ),
            await ask_json(core, "tint", RED, AskOptions(record=True, source="cli", app="shop")),
            await ask_json(core, "tint", RED, AskOptions(record=False)),
        ]
        await core.records.flush_async()
        return core, answers

    core, answers = asyncio.run(main())
    engine = core.engine
    try:
        rows = find_records(engine, question="tint")
        assert len(rows) == 2  # the third answer was not recorded
        newest, oldest = rows
        assert newest["source"] == "cli" and newest["app"] == "shop"
        assert oldest["source"] == "job" and oldest["job_id"] == "j-1"
        assert oldest["image_sha256"] == answers[0]["image"]["sha256"]
        assert (oldest["width"], oldest["height"]) == (30, 20)
        assert oldest["models"] == answers[0]["models"]
        assert oldest["models"][0]["digest"].startswith("sha256:")
        assert oldest["answer"] == answers[0]["answer"]
        assert oldest["answer"]["labels"][0]["label"] == "green"
        assert set(oldest["timings"]) >= {"decode", "infer", "total", "steps"}
        created = datetime.fromisoformat(oldest["created_at"])
        assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)

        assert find_records(engine, question="tint", source="job")[0]["job_id"] == "j-1"
        assert find_records(engine, since=datetime.now(UTC) + timedelta(minutes=1)) == []
        assert len(find_records(engine, since=datetime.now(UTC) - timedelta(minutes=5))) == 2
        assert find_records(engine, image_sha256=answers[1]["image"]["sha256"])[0]["app"] == "shop"
        assert len(find_records(engine, limit=1)) == 1
        # By the model version that answered: the records carry tint v1; another version or
        # another model has none.
        used = oldest["models"][0]
        assert len(find_records(engine, model=used["name"])) == 2
        assert len(find_records(engine, model=used["name"], version=used["version"])) == 2
        assert find_records(engine, model=used["name"], version=used["version"] + 1) == []
        assert find_records(engine, model="tin") == []  # a name, not a prefix
        with pytest.raises(BadInput, match="needs the model"):
            find_records(engine, version=1)

        dialect = engine.dialect.name
        green = query_records(engine, f"{json_label(dialect)} = 'green'")
        assert [r["id"] for r in green] == [oldest["id"]]
        assert green[0]["answer"]["labels"][0]["label"] == "green"  # JSON comes back decoded
        assert len(query_records(engine, "source IN ('job', 'cli') AND question LIKE 'ti%'")) == 2
        assert len(query_records(engine, "question = 'a:b' OR id > 0", limit=1)) == 1
        if dialect == "postgresql":  # the clause runs in a read-only transaction
            probe = "current_setting('transaction_read_only') = 'on'"
            assert len(query_records(engine, probe)) == 2
        with pytest.raises(BadInput, match="the query failed"):
            query_records(engine, "no_such_column = 1")
        # The pooled connection is writable again afterwards.
        with engine.begin() as conn:
            conn.execute(text("UPDATE prediction_records SET app = 'x' WHERE id = :i"),
                         {"i": oldest["id"]})
        assert find_records(engine, app="x")[0]["id"] == oldest["id"]
    finally:
        asyncio.run(core.close())


@pytest.mark.parametrize(
    ("clause", "reason"),
    [
        ("1=1; DELETE FROM prediction_records", "';'"),
        ("1=1) OR (1=1", "closes a parenthesis it never opened"),
        ("(1=1", "leaves a parenthesis open"),
        ("1=1 -- and the rest", "comments"),
        ("1=1 /* x */", "comments"),
        ("id IN (SELECT id FROM prediction_records) AND drop = 1", "DROP is not allowed"),
        ("question = 'unclosed", "never closed"),
        ("   ", "empty"),
    ],
)
def test_where_clauses_that_are_not_one_condition_are_refused(clause: str, reason: str) -> None:
    with pytest.raises(BadInput) as info:
        check_where(clause)
    assert reason in info.value.message


def test_words_inside_strings_are_not_statements() -> None:
    assert check_where("question = 'drop; -- (it'' s fine'") == "question = 'drop; -- (it'' s fine'"


def test_a_record_that_cannot_be_written_does_not_fail_the_answer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_tint(home)

    async def main() -> tuple[dict[str, Any], int, int]:
        core = local_core(Settings(home=home))
        with core.engine.begin() as conn:
            conn.execute(text("DROP TABLE prediction_records"))
        try:
            answer = await ask_json(core, "tint", GREEN, AskOptions(record=True))
            await core.records.flush_async()
            return answer, core.records.failed, core.records.written
        finally:
            await core.close()

    answer, failed, written = asyncio.run(main())
    assert answer["answer"]["labels"][0]["label"] == "green"
    assert (failed, written) == (1, 0)


def test_records_over_rest_and_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    from typer.testing import CliRunner

    from argus.cli.records import records_app
    from argus.http.records import router
    from argus.server import in_process_app

    home = tmp_path / "home"
    register_tint(home)
    app = in_process_app(Settings(home=home, preload=False))
    app.include_router(router)
    core: Core = app.state.core

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://argus") as client:
            for image in (GREEN, RED):
                r = await client.post("/v1/questions/tint?record=true", content=image)
                assert r.status_code == 200, r.text
            assert (await client.post("/v1/questions/tint", content=RED)).status_code == 200
            await core.records.flush_async()

            async def get(**params: Any) -> httpx.Response:
                return await client.get("/v1/records", params=params)

            rows = (await get(question="tint")).json()
            assert [r["answer"]["labels"][0]["label"] for r in rows] == ["red", "green"]
            assert rows[0]["source"] == "http"
            later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
            assert (await get(since=later)).json() == []
            assert len((await get(since="2000-01-01", limit=1)).json()) == 1
            assert (await get(question="labels")).json() == []
            bad = await get(since="yesterday")
            assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]
            assert (await get(limit=0)).status_code == 422
        await core.close()

    asyncio.run(main())
    monkeypatch.setenv("ARGUS_HOME", str(home))
    runner = CliRunner()
    out = runner.invoke(records_app, ["query", "source = 'http'", "--json", "--limit", "1"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    assert len(listed) == 1 and listed[0]["answer"]["labels"][0]["label"] == "red"
    table = runner.invoke(records_app, ["query", "question = 'tint'"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "2 record(s)" in table.output
    refused = runner.invoke(records_app, ["query", "1=1; DELETE FROM prediction_records"])
    assert refused.exit_code == 2 and "';'" in refused.output
