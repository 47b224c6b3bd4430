"""Reading prediction records: a structured filter (``GET /v1/records``) or a SQL WHERE
clause (``argus records query``) run read-only: inside ``SET TRANSACTION READ ONLY`` on
PostgreSQL and on a ``PRAGMA query_only`` connection on SQLite, time-limited."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from argus.db.schema import PredictionRecord
from argus.errors import BadInput

MAX_LIMIT = 10_000
QUERY_TIMEOUT_MS = 10_000
COLUMNS = [c.name for c in PredictionRecord.__table__.columns]
_STATEMENT_WORDS = frozenset(
    re.findall(
        r"\w+",
        """insert update delete drop alter create attach detach pragma vacuum reindex grant
        revoke truncate copy merge call execute begin commit rollback savepoint release reset
        lock listen notify load into""",
    )
)


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


def find_records(
    engine: Engine,
    *,
    question: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    image_sha256: str | None = None,
    source: str | None = None,
    app: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Records matching every given filter, newest first."""
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
    stmt = stmt.order_by(PredictionRecord.created_at.desc(), PredictionRecord.id.desc())
    stmt = stmt.limit(_check_limit(limit))
    with Session(engine) as session:
        return [_as_dict(row) for row in session.scalars(stmt)]


def check_where(clause: str) -> str:
    """Refuse anything but one boolean expression: no ';', no comments, no statements, and
    parentheses that stay balanced (so the clause cannot close the WHERE it is put in)."""
    if not clause.strip():
        raise BadInput("the WHERE clause is empty")
    depth = 0
    words: list[str] = []
    i, n = 0, len(clause)
    while i < n:
        ch = clause[i]
        if ch in "'\"":
            end = i + 1
            while end < n:
                if clause[end] == ch:
                    if end + 1 < n and clause[end + 1] == ch:  # '' inside a string
                        end += 2
                        continue
                    break
                end += 1
            if end >= n:
                raise BadInput("the WHERE clause has a string that is never closed")
            i = end + 1
            continue
        if ch == ";":
            raise BadInput("the WHERE clause may not contain ';' (one condition, no statements)")
        if clause.startswith("--", i) or clause.startswith("/*", i):
            raise BadInput("the WHERE clause may not contain SQL comments")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise BadInput("the WHERE clause closes a parenthesis it never opened")
        if ch.isalpha() or ch == "_":
            end = i
            while end < n and (clause[end].isalnum() or clause[end] == "_"):
                end += 1
            words.append(clause[i:end].lower())
            i = end
            continue
        i += 1
    if depth != 0:
        raise BadInput("the WHERE clause leaves a parenthesis open")
    bad = sorted(set(words) & _STATEMENT_WORDS)
    if bad:
        raise BadInput(
            f"the WHERE clause may only filter records; {', '.join(bad).upper()} is not allowed"
        )
    return clause


def query_records(engine: Engine, where: str, limit: int = 100) -> list[dict[str, Any]]:
    """Run ``SELECT … FROM prediction_records WHERE (<where>) … LIMIT :limit`` read-only."""
    check_where(where)
    _check_limit(limit)
    # ':' would otherwise start a bind parameter (even inside the user's string literals).
    escaped = where.replace(":", "\\:")
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM prediction_records WHERE ({escaped}) "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    stmt = text(sql).columns(*PredictionRecord.__table__.columns).bindparams(limit=limit)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        try:
            if sqlite:
                conn.exec_driver_sql("PRAGMA query_only = ON")
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}")
            try:
                rows = conn.execute(stmt).all()
            except Exception as exc:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                raise BadInput(f"the query failed: {reason}") from exc
            finally:
                conn.rollback()
        finally:
            if sqlite:
                # Never hand a query-only connection back to the pool.
                conn.invalidate()
    return [_as_dict(row) for row in rows]
