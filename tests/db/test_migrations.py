"""The Alembic migrations create exactly the tables the code declares."""

from __future__ import annotations

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
