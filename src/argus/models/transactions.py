"""Registry write transactions: the write lock taken first, and a bounded retry when the
database was busy or a concurrent change raced the transaction; and what every registry
change does inside one (look rows up, write an audit event, bump the generation)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from argus.db.schema import AuditEvent, Model, ModelVersion, RegistryState
from argus.errors import Conflict, NotFound, Unavailable

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


def find_model(session: Session, name: str) -> Model:
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        raise NotFound(f"no model named {name!r}")
    return model


def find_version(session: Session, model: Model, number: int) -> ModelVersion:
    row = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.number == number)
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {number}")
    return row


def bump(session: Session, note: str) -> None:
    """Move the registry generation (servers poll it): one UPDATE adding 1, so concurrent
    writers never lose a bump."""
    result = session.execute(
        update(RegistryState)
        .where(RegistryState.id == 1)
        .values(generation=RegistryState.generation + 1, note=note)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.add(RegistryState(id=1, generation=1, note=note))


def audit(session: Session, subject: str, action: str, actor: str, **kw: Any) -> None:
    session.add(AuditEvent(model_name=subject, action=action, actor=actor, **kw))
