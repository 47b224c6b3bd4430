"""Engine creation and migrations (SQLite WAL by default, PostgreSQL for several machines)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from argus.errors import ConfigError

log = logging.getLogger(__name__)
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
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent.parent / "migrations"))
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
        _migrated.add(key)
