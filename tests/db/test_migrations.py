"""The Alembic migrations create exactly the tables the code declares."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from argus.db.engine import make_engine, migrate
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
