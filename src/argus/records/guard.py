"""Where a user's SQL filter over prediction records runs: a place that can see that table
alone, for a bounded time, with errors that do not echo data.

Three layers, because a WHERE clause is a program:

- :func:`check_where` reads the clause lexically: one condition (no ``;``, comments or
  statement words, balanced parentheses), strings written plainly (no ``E''``/``U&''``/``$$``
  forms, whose escapes a simple reader would misjudge), and on PostgreSQL only the functions
  of :data:`PG_FUNCTIONS` and no catalog names.
- The database enforces the rest. SQLite: an authorizer that allows SELECT, reading
  ``prediction_records`` and the side-effect-free functions of :data:`SQLITE_FUNCTIONS`, and a
  progress handler that stops the statement at its deadline. PostgreSQL: a read-only
  transaction with a statement timeout that ``SET LOCAL ROLE``\\s to a role that may SELECT
  ``prediction_records`` and nothing else (made idempotently by :func:`ensure_reader_role`).
- :func:`redact` keeps only the database's first line of complaint, with any quoted text the
  user did not write replaced by ``'…'``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from argus.errors import BadInput, ConfigError

TABLE = "prediction_records"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MAX_VALUE_BYTES = 32 * 1024 * 1024
"""Largest string or blob the SQLite sandbox may build (``zeroblob``, ``printf`` widths)."""

_STATEMENT_WORDS = frozenset(
    re.findall(
        r"\w+",
        """insert update delete drop alter create attach detach pragma vacuum reindex grant
        revoke truncate copy merge call execute begin commit rollback savepoint release reset
        lock listen notify load into set do""",
    )
)

SQLITE_FUNCTIONS = _words(
    """abs avg char coalesce concat concat_ws count date datetime format glob group_concat hex
    ifnull iif instr json json_array json_array_length json_extract json_object json_quote
    json_type json_valid julianday length like likelihood likely lower ltrim max min nullif
    printf quote replace round rtrim sign strftime string_agg substr substring sum time
    total trim typeof unicode unixepoch unlikely upper -> ->>"""
)
"""What a SQLite filter may call: pure functions of their arguments (no ``load_extension``,
``sqlite_*`` introspection, ``randomblob``/``zeroblob`` or table-valued functions)."""

PG_FUNCTIONS = _words(
    """abs avg btrim ceil ceiling char_length coalesce count date_part date_trunc extract
    floor greatest jsonb_array_length jsonb_extract_path jsonb_extract_path_text
    jsonb_typeof json_array_length json_extract_path json_extract_path_text json_typeof
    least left length lower lpad ltrim max md5 min now nullif position right round rpad
    rtrim sign split_part starts_with strpos substr substring sum to_char to_timestamp trim
    trunc upper current_setting"""
)
"""What a PostgreSQL filter may call (checked lexically; the reader role bounds the rest)."""

# Words that are followed by "(" in ordinary conditions without being function calls.
_SQL_WORDS = _words(
    """and or not in exists any all some is like ilike similar between case when then else end
    cast as select where from values array row over filter interval on distinct by group
    order having limit offset union intersect except join using with recursive"""
)


def _refuse(reason: str) -> BadInput:
    return BadInput(f"the WHERE clause {reason}")


def check_where(clause: str, dialect: str = "sqlite") -> str:
    """Refuse anything but one boolean expression (see the module's first layer)."""
    if not clause.strip():
        raise BadInput("the WHERE clause is empty")
    postgres = dialect == "postgresql"
    depth = 0
    words: list[str] = []
    i, n = 0, len(clause)
    while i < n:
        ch = clause[i]
        if ch in "'\"":
            if i > 0 and (clause[i - 1].isalnum() or clause[i - 1] in "_&"):
                raise _refuse("may only write strings plainly as '…' (no E'', U&'' or B'' forms)")
            end = i + 1
            while end < n:
                if clause[end] == ch:
                    if end + 1 < n and clause[end + 1] == ch:  # '' inside a string
                        end += 2
                        continue
                    break
                end += 1
            if end >= n:
                raise _refuse("has a string that is never closed")
            if ch == '"':
                name = clause[i + 1 : end].replace('""', '"').lower()
                words.append(name)
                if postgres and clause[end + 1 :].lstrip().startswith("("):
                    raise _refuse(f"may not call the quoted function {name!r}")
            i = end + 1
            continue
        if ch == "$":
            raise _refuse("may not contain '$' (no dollar quoting or parameters)")
        if ch == ";":
            raise _refuse("may not contain ';' (one condition, no statements)")
        if clause.startswith("--", i) or clause.startswith("/*", i):
            raise _refuse("may not contain SQL comments")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _refuse("closes a parenthesis it never opened")
        if ch.isalpha() or ch == "_":
            end = i
            while end < n and (clause[end].isalnum() or clause[end] == "_"):
                end += 1
            word = clause[i:end].lower()
            words.append(word)
            cte = bool(words[-2:-1]) and words[-2] in ("with", "recursive")  # WITH c(x) AS
            called = postgres and not cte and clause[end:].lstrip().startswith("(")
            if called and word not in PG_FUNCTIONS and word not in _SQL_WORDS:
                raise _refuse(f"may not call {word}(), which is not a pure function it knows")
            i = end
            continue
        i += 1
    if depth != 0:
        raise _refuse("leaves a parenthesis open")
    bad = sorted(set(words) & _STATEMENT_WORDS)
    if bad:
        raise _refuse(f"may only filter records; {', '.join(bad).upper()} is not allowed")
    if postgres:
        catalog = sorted(w for w in set(words) if w.startswith("pg_") or w == "information_schema")
        if catalog:
            raise _refuse(f"may only read {TABLE}, not {', '.join(catalog)}")
    return clause


# From the first quote to the last of its kind: a quoted value may itself hold quotes (JSON).
_QUOTED = (re.compile(r"'.*'"), re.compile(r'".*"'))


def redact(exc: BaseException, clause: str) -> str:
    """The database's reason in one line, without quoted text the clause did not contain (a
    value of a row or of another table that an error message would otherwise echo)."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__

    def keep(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if inner in clause else match.group(0)[0] + "…" + match.group(0)[0]

    for quoted in _QUOTED:
        first = quoted.sub(keep, first)
    return first if len(first) <= 300 else first[:299] + "…"


class Timeout(Exception):
    """The statement ran past its deadline."""


def sqlite_sandbox(dbapi: sqlite3.Connection, timeout_s: float) -> Callable[[], None]:
    """Confine ``dbapi`` (a pooled connection that is invalidated afterwards) to reading the
    records table for ``timeout_s``; returns what lifts the confinement."""

    def authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_TRANSACTION:  # the engine's own BEGIN; the connection
            return sqlite3.SQLITE_OK  # is query-only, so a transaction changes nothing
        if action == sqlite3.SQLITE_READ and arg1 == TABLE:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in SQLITE_FUNCTIONS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    deadline = time.monotonic() + timeout_s
    dbapi.execute("PRAGMA query_only = ON")
    dbapi.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    dbapi.set_authorizer(authorize)
    # Every 10,000 virtual-machine steps: a recursive CTE never returns to Python otherwise.
    dbapi.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)

    def lift() -> None:
        dbapi.set_authorizer(None)
        dbapi.set_progress_handler(None, 0)

    return lift


def ensure_reader_role(engine: Engine, role: str) -> None:
    """Make ``role`` (no login, SELECT on the records table alone) and make the connecting
    user a member, unless that is so already; safe to run any number of times at once."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ConfigError(
            f"ARGUS_RECORDS_READER_ROLE must be a plain lower-case name, not {role!r}"
        )
    ready = text(
        f"SELECT pg_has_role(current_user, :r, 'MEMBER') "
        f"AND has_table_privilege(:r, '{TABLE}', 'SELECT')"
    )
    with engine.connect() as conn:
        if _role_exists(conn, role) and conn.execute(ready, {"r": role}).scalar():
            return
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                _make_reader_role(conn, role)
            return
        except Exception as exc:  # another process made it at the same moment: look again
            if attempt == 2:
                raise ConfigError(
                    f"records query on PostgreSQL runs as the role {role}, which may only read "
                    f"{TABLE}; the database user could not create it ({redact(exc, '')}). "
                    f"Have an administrator run: CREATE ROLE {role} NOLOGIN; "
                    f"GRANT SELECT ON {TABLE} TO {role}; GRANT {role} TO <argus user>;"
                ) from exc
            time.sleep(0.1 * (attempt + 1))


def _role_exists(conn: Connection, role: str) -> bool:
    found = conn.execute(text("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :r)"),
                         {"r": role}).scalar()
    return bool(found)


def _make_reader_role(conn: Connection, role: str) -> None:
    if not _role_exists(conn, role):
        conn.exec_driver_sql(f"CREATE ROLE {role} NOLOGIN")
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
    conn.exec_driver_sql(f"GRANT SELECT ON {TABLE} TO {role}")
    member = conn.execute(
        text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}
    ).scalar()
    if not member:
        conn.exec_driver_sql(f"GRANT {role} TO CURRENT_USER")


def enter_reader(conn: Connection, role: str, timeout_s: float) -> None:
    """Start the read-only transaction the clause runs in, as ``role``, time-limited."""
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
    conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
