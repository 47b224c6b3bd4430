"""Shared CLI helpers: settings, JSON output, errors as exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from argus.errors import ArgusError
from argus.settings import Settings

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


# The ask options every command that asks a question takes (AskOptions parses them).
TOP_K = typer.Option(None, "--top-k", help="How many labels a classifying step answers.")
APP = typer.Option(None, "--app", help="Answer with this application's pinned versions.")
VERSION = typer.Option(None, "--version", help="Use this exact model version.")
ALIAS = typer.Option(None, "--alias", help="Use the version this alias points at.")
CONF = typer.Option(None, "--conf", help="Detection confidence threshold (0 to 1).")


def settings() -> Settings:
    return Settings()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Turn ArgusError into a one-line message and a non-zero exit; a database that cannot be
    opened or reached is one line too, not a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArgusError as exc:
            fail(exc.message, 2 if exc.status < 500 else 1)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            fail(f"the database cannot be used ({reason}); check ARGUS_HOME or "
                 "ARGUS_DATABASE_URL", 1)

    return wrapper  # type: ignore[return-value]

