"""Registry write transactions: the write lock taken first, and a bounded retry when the
database was busy or a concurrent change raced the transaction."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from argus.errors import Conflict, Unavailable

T = TypeVar("T")
WRITE_TRIES = 8
"""How often a write that met a busy database (or lost a race it can redo) runs in all."""


class Raced(Exception):
    """A row changed between this transaction's read and its write; running it again is safe."""


def _busy(exc: OperationalError) -> bool:
    text = str(exc.orig if exc.orig is not None else exc).lower()
    # SQLite: another writer holds the lock. PostgreSQL: deadlock or serialization failure.
    return any(w in text for w in ("locked", "busy", "deadlock", "could not serialize"))


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A write transaction. On SQLite it starts with BEGIN IMMEDIATE: registry writes read
    then write, and a deferred BEGIN that upgrades its read lock while another writer holds
    the database fails at once with "database is locked" (SQLite allows no busy wait then);
    IMMEDIATE takes the write lock first and waits its busy timeout for it."""
    bind = engine
    if engine.dialect.name == "sqlite":
        bind = engine.execution_options(sqlite_begin="IMMEDIATE")
    with Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


def run_write(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction; again (a bounded number of times, after a short
    random pause) when the database was busy, a unique row was inserted concurrently or
    :class:`Raced` was raised. ``work`` must check what exists before it inserts."""
    for attempt in range(WRITE_TRIES):
        try:
            with write_session(engine) as session:
                return work(session)
        except OperationalError as exc:
            if not _busy(exc):
                raise
            if attempt == WRITE_TRIES - 1:
                raise Unavailable("the registry database stayed busy; try again") from None
        except IntegrityError:
            # Two writers inserted the same unique row (a new alias, model or app) at once;
            # the next run sees the other's row and takes the path for an existing one.
            if attempt == WRITE_TRIES - 1:
                raise
        except Raced:
            if attempt == WRITE_TRIES - 1:
                raise Conflict("the registry was changed concurrently; try again") from None
        time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")
