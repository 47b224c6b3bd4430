"""``argus records query WHERE``: prediction records through a read-only SQL filter."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from argus.cli.common import console, handles_errors, print_json, settings

records_app = typer.Typer(help="Read prediction records.", no_args_is_help=True)
app = records_app


@records_app.callback()
def records() -> None:
    """Read prediction records (written when a question is asked with record=true, and by
    jobs and ingest)."""


@records_app.command("query")
@handles_errors
def query(
    where: str = typer.Argument(
        ...,
        help="A SQL WHERE clause over prediction_records, e.g. \"question = 'describe'\".",
    ),
    limit: int = typer.Option(100, "--limit", help="At most this many records (newest first)."),
    json_out: bool = typer.Option(False, "--json", help="Every column, as JSON."),
) -> None:
    """Records matching WHERE, newest first. The clause runs read-only; columns: id, question,
    image_sha256, width, height, models, answer, timings, source, app, job_id, created_at."""
    from argus.db.engine import make_engine, migrate
    from argus.records import query_records

    config = settings()
    engine = make_engine(config.db_url)
    try:
        migrate(engine)
        rows = query_records(
            engine, where, limit,
            timeout_s=config.records_query_timeout_s, reader_role=config.records_reader_role,
        )
    finally:
        engine.dispose()
    if json_out:
        print_json(rows)
        return
    table = Table("id", "created_at", "question", "image", "models", "source", "answer")
    for row in rows:
        models = ", ".join(f"{m['name']}:{m['version']}" for m in row["models"] or [])
        answer = json.dumps(row["answer"], separators=(",", ":"))
        table.add_row(
            str(row["id"]),
            str(row["created_at"])[:19],
            row["question"],
            row["image_sha256"][:12],
            models,
            row["source"],
            answer if len(answer) <= 80 else answer[:79] + "…",
        )
    console.print(table)
    console.print(f"{len(rows)} record(s)")
