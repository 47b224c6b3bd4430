"""The Alembic migrations create exactly the tables the code declares."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import argus.db.engine as engine_module
from argus.db.engine import MIGRATIONS, head_revision, make_engine, migrate
from argus.db.schema import Base


def test_migrations_match_the_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    engine.dispose()


def test_migrating_says_nothing_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server logging at INFO does not print Alembic's "Context impl SQLiteImpl" lines."""
    engine = make_engine(f"sqlite:///{tmp_path / 'quiet.db'}")
    with caplog.at_level(logging.INFO):
        migrate(engine)
    engine.dispose()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


def test_the_head_read_from_the_files_is_alembics() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == script.get_current_head()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def test_a_database_at_the_newest_revision_opens_without_alembic(db_url: str) -> None:
    """Every command and server start opens a migrated database: it asks the database its
    revision instead of importing Alembic (a fresh interpreter: this one has it)."""
    engine = make_engine(db_url)
    migrate(engine)
    engine.dispose()
    code = (
        "import sys\n"
        "from argus.db.engine import make_engine, migrate\n"
        "engine = make_engine(sys.argv[1])\n"
        "migrate(engine)\n"
        "engine.dispose()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_a_database_one_revision_behind_is_upgraded(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")

    def tables() -> set[str]:  # the newest migration (0006) adds the galleries' tables
        return set(inspect(engine).get_table_names())

    with engine.connect() as conn:
        behind = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert behind != head_revision() and "galleries" not in tables()
    monkeypatch.setattr(engine_module, "_migrated", set())  # as a new process would
    migrate(engine)
    assert {"galleries", "gallery_faces", "gallery_events", "gallery_state"} <= tables()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            head_revision())
    engine.dispose()
