"""The records query's confinement, attacked as issue 15 did: a clause can read
prediction_records alone, for a bounded time, and its errors do not echo data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from argus.db.engine import make_engine, migrate
from argus.db.schema import Job, PredictionRecord
from argus.errors import BadInput
from argus.records import query_records
from argus.records.guard import ensure_reader_role, enter_reader

HOOK = "https://hooks.example/secret-token-7f3a"
ANSWER = {"labels": [{"label": "private-label-91c2", "score": 0.9}]}
HANG = (
    "id IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT x FROM c WHERE x < 0)"
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as session:
        session.add(PredictionRecord(question="tint", image_sha256="ab" * 32, width=1, height=1,
                                     answer=ANSWER, source="cli"))
        session.add(Job(id="j-1", question="tint", image_sha256="cd" * 32, image_bytes=1,
                        callback_url=HOOK))
        session.commit()
    yield engine
    engine.dispose()


def refused(engine: Engine, clause: str, **kwargs: float) -> str:
    with pytest.raises(BadInput) as info:
        query_records(engine, clause, **kwargs)  # type: ignore[arg-type]
    message = info.value.message
    assert HOOK not in message and "secret-token" not in message
    assert "private-label" not in message
    return message


def test_an_endless_recursive_query_is_stopped_at_its_time_limit(engine: Engine) -> None:
    message = refused(engine, HANG, timeout_s=0.3)
    assert message.startswith("the query took longer than 0.3 s and was stopped")
    assert len(query_records(engine, "question = 'tint'")) == 1  # and the next one runs


@pytest.mark.parametrize(
    "clause",
    [
        "json_extract('{}', (SELECT group_concat(callback_url) FROM jobs)) IS NULL",
        "CAST((SELECT group_concat(callback_url) FROM jobs) AS INTEGER) = 1",
        "id IN (SELECT 1 FROM jobs WHERE callback_url LIKE 'https%')",
    ],
    ids=["json-path", "cast", "subquery"],
)
def test_other_tables_cannot_be_read_and_errors_do_not_echo_them(
    engine: Engine, clause: str
) -> None:
    if engine.dialect.name == "postgresql":
        clause = clause.replace("json_extract('{}', ", "(").replace(") IS NULL", ") IS NULL")
        clause = clause.replace("group_concat(callback_url)", "string_agg(callback_url, ',')")
        clause = clause.replace("AS INTEGER", "AS integer")
    message = refused(engine, clause)
    assert message.startswith("the query failed") or "may not call" in message


def test_errors_about_the_records_own_values_do_not_echo_them(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        clause = "json_extract('{}', CAST(answer AS TEXT)) IS NULL"
    else:
        clause = "CAST(answer::text AS integer) = 1"
    assert refused(engine, clause).startswith("the query failed")


@pytest.mark.parametrize(
    ("clause", "reason"),
    [
        ("question = E'\\'' OR 1 = 1; DELETE FROM prediction_records --'", "strings plainly"),
        ("question = U&'\\0041'", "strings plainly"),
        ("question = $$x$$", "'$'"),
        ("pg_read_file('/etc/passwd') IS NOT NULL", None),
        ("(SELECT count(*) FROM pg_ls_dir('.')) > 0", None),
        ("lo_import('/etc/passwd') > 0", None),
        ("pg_terminate_backend(1) OR 1 = 1", None),
        ("set_config('role', 'postgres', true) IS NOT NULL", None),
        ("load_extension('x') IS NULL", None),
        ("(SELECT count(*) FROM sqlite_master) > 0", None),
        ("(SELECT query_only FROM pragma_query_only()) = 1", None),
        ("(SELECT count(*) FROM pg_catalog.pg_class) > 0", None),
        ("id IN (SELECT id FROM jobs)", None),
    ],
)
def test_each_attack_is_refused(engine: Engine, clause: str, reason: str | None) -> None:
    message = refused(engine, clause)
    if reason is not None:
        assert reason in message
    with Session(engine) as session:
        assert session.query(PredictionRecord).count() == 1


def test_the_postgres_reader_role_can_read_the_records_table_alone(
    engine: Engine,
) -> None:
    """The second layer on its own, without the lexical check: what the role may not do."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the reader role is PostgreSQL's")
    role = "argus_records_reader"
    ensure_reader_role(engine, role)
    ensure_reader_role(engine, role)  # idempotent
    attacks = [
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT pg_ls_dir('.')",
        "SELECT lo_import('/etc/hostname')",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
        "SELECT callback_url FROM jobs",
        "SELECT rolname FROM pg_authid",
        "UPDATE prediction_records SET app = 'x'",
    ]
    for sql in attacks:
        with engine.connect() as conn:
            enter_reader(conn, role, 5.0)
            with pytest.raises(Exception) as info:
                conn.exec_driver_sql(sql).all() if sql.startswith("SELECT") else (
                    conn.exec_driver_sql(sql)
                )
            # insufficient privilege, or a write in a read-only transaction
            assert info.value.orig.sqlstate in ("42501", "25006"), sql
            conn.rollback()
    with engine.connect() as conn:
        enter_reader(conn, role, 5.0)
        assert conn.execute(text("SELECT count(*) FROM prediction_records")).scalar() == 1
        conn.rollback()
