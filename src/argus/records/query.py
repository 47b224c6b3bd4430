"""Reading prediction records: a structured filter (``GET /v1/records``) or a SQL WHERE
clause (``argus records query``), which runs where it can read that table alone, read-only and
time-limited (:mod:`argus.records.guard`)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from argus.db.schema import PredictionRecord
from argus.errors import BadInput
from argus.records.guard import (
    check_where,
    ensure_reader_role,
    enter_reader,
    redact,
    sqlite_sandbox,
)

MAX_LIMIT = 10_000
QUERY_TIMEOUT_S = 10.0
READER_ROLE = "argus_records_reader"
COLUMNS = [c.name for c in PredictionRecord.__table__.columns]

def _as_dict(row: Any) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in COLUMNS}
    created = out.get("created_at")
    if isinstance(created, datetime):
        if created.tzinfo is None:  # SQLite keeps no zone; Argus writes UTC
            created = created.replace(tzinfo=UTC)
        out["created_at"] = created.isoformat()
    return out


def parse_time(value: str, what: str) -> datetime:
    """An ISO 8601 time (a bare date means its midnight); no zone means UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadInput(
            f"{what} must be an ISO 8601 time such as 2024-05-01T12:00:00Z, not {value!r}"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def _bind_time(engine: Engine, moment: datetime) -> datetime:
    # SQLite stores the UTC wall time without a zone; compare like with like.
    return moment.replace(tzinfo=None) if engine.dialect.name == "sqlite" else moment


def used_model(engine: Engine, name: str, version: int | None) -> Any:
    """A WHERE clause: the record's answer used model ``name`` (at ``version``, if given),
    read from the ``models`` list in each database's JSON syntax."""
    if engine.dialect.name == "sqlite":
        clause = (
            "EXISTS (SELECT 1 FROM json_each(prediction_records.models) AS used "
            "WHERE json_extract(used.value, '$.name') = :used_name"
        )
        if version is None:
            return text(clause + ")").bindparams(used_name=name)
        clause += " AND json_extract(used.value, '$.version') = :used_version)"
        return text(clause).bindparams(used_name=name, used_version=version)
    wanted: dict[str, Any] = {"name": name}
    if version is not None:
        wanted["version"] = version
    return text("CAST(prediction_records.models AS jsonb) @> CAST(:used AS jsonb)").bindparams(
        used=json.dumps([wanted])
    )


def find_records(
    engine: Engine,
    *,
    question: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    image_sha256: str | None = None,
    source: str | None = None,
    app: str | None = None,
    model: str | None = None,
    version: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Records matching every given filter, newest first. ``model`` (and ``version``): the
    answer used that model (at that version): what a canary answered, say."""
    if version is not None and model is None:
        raise BadInput("a version filter needs the model it is a version of (model=NAME)")
    stmt = select(PredictionRecord)
    if question is not None:
        stmt = stmt.where(PredictionRecord.question == question)
    if since is not None:
        stmt = stmt.where(PredictionRecord.created_at >= _bind_time(engine, since))
    if until is not None:
        stmt = stmt.where(PredictionRecord.created_at < _bind_time(engine, until))
    if image_sha256 is not None:
        stmt = stmt.where(PredictionRecord.image_sha256 == image_sha256)
    if source is not None:
        stmt = stmt.where(PredictionRecord.source == source)
    if app is not None:
        stmt = stmt.where(PredictionRecord.app == app)
    if model is not None:
        stmt = stmt.where(used_model(engine, model, version))
    stmt = stmt.order_by(PredictionRecord.created_at.desc(), PredictionRecord.id.desc())
    stmt = stmt.limit(_check_limit(limit))
    with Session(engine) as session:
        return [_as_dict(row) for row in session.scalars(stmt)]


def query_records(
    engine: Engine,
    where: str,
    limit: int = 100,
    *,
    timeout_s: float = QUERY_TIMEOUT_S,
    reader_role: str = READER_ROLE,
) -> list[dict[str, Any]]:
    """Run ``SELECT … FROM prediction_records WHERE (<where>) … LIMIT :limit`` where it can
    read that table alone, for at most ``timeout_s`` (see :mod:`argus.records.guard`)."""
    sqlite = engine.dialect.name == "sqlite"
    check_where(where, engine.dialect.name)
    _check_limit(limit)
    if not sqlite:
        ensure_reader_role(engine, reader_role)
    # ':' would otherwise start a bind parameter (even inside the user's string literals).
    escaped = where.replace(":", "\\:")
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM prediction_records WHERE ({escaped}) "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    stmt = text(sql).columns(*PredictionRecord.__table__.columns).bindparams(limit=limit)
    with engine.connect() as conn:
        lift = None
        try:
            if sqlite:
                dbapi = cast(sqlite3.Connection, conn.connection.driver_connection)
                lift = sqlite_sandbox(dbapi, timeout_s)
            else:
                enter_reader(conn, reader_role, timeout_s)
            try:
                rows = conn.execute(stmt).all()
            except Exception as exc:
                if _timed_out(exc, sqlite):
                    raise BadInput(
                        f"the query took longer than {timeout_s:g} s and was stopped; "
                        "narrow the condition"
                    ) from exc
                raise BadInput(f"the query failed: {redact(exc, where)}") from exc
            finally:
                if lift is not None:
                    lift()
                conn.rollback()
        finally:
            if sqlite:
                # Never hand a confined connection back to the pool.
                conn.invalidate()
    return [_as_dict(row) for row in rows]


def _timed_out(exc: Exception, sqlite: bool) -> bool:
    orig = getattr(exc, "orig", exc)
    if sqlite:
        return isinstance(orig, sqlite3.OperationalError) and str(orig) == "interrupted"
    return getattr(orig, "sqlstate", None) == "57014"  # query_canceled: statement_timeout
