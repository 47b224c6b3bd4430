"""Engine creation and migrations (SQLite WAL by default, PostgreSQL for several machines)."""

from __future__ import annotations

import ast
import functools
import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from argus.errors import ConfigError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent.parent / "migrations"
_migrated: set[str] = set()
_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the data directory {folder}: {exc.strerror}; set ARGUS_HOME "
                    "(or ARGUS_DATABASE_URL) to a place this user may write"
                ) from None
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN reach SQLite so claims can use BEGIN IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent, once per URL per process)."""
    key = str(engine.url)
    with _lock:
        if key in _migrated:
            return
        if not _at_head(engine):
            _upgrade(engine)
        _migrated.add(key)


@functools.cache
def head_revision() -> str | None:
    """The newest revision, read from the ``revision``/``down_revision`` lines of the migration
    files; None unless there is exactly one (a merge or a branch is Alembic's to sort out)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)):
                if node.targets[0].id == "revision":
                    revisions.add(node.value.value)
                elif node.targets[0].id == "down_revision":
                    parents.add(node.value.value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """Whether the database says it is at the newest revision already: then Alembic (a third
    of a second to import, on every command and server start) is not needed."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no such table yet, or no database: Alembic makes it or says why
        return False
    return [v for (v,) in versions] == [head]


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic says "Context impl SQLiteImpl" and the like at INFO on every start: only
    # its warnings are worth a user's attention.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(max(level, logging.WARNING))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        alembic_log.setLevel(level)
