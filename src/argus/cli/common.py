"""Shared CLI helpers: settings, JSON output, errors as exit codes.

Every command module imports this one and typer at the top, and what its command needs
(the core, the database, the models) inside the command: ``argus --help`` and each command
then load only what they use (``tests/cli/test_imports.py`` keeps it so)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from argus.errors import ArgusError

if TYPE_CHECKING:
    from argus.settings import Settings

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


# The ask options every command that asks a question takes (AskOptions parses them).
TOP_K = typer.Option(None, "--top-k", help="How many labels a classifying step answers.")
APP = typer.Option(None, "--app", help="Answer with this application's pinned versions.")
VERSION = typer.Option(None, "--version", help="Use this exact model version.")
ALIAS = typer.Option(None, "--alias", help="Use the version this alias points at.")
CONF = typer.Option(None, "--conf", help="Detection confidence threshold, or a text step's "
                    "lowest line score kept (0 to 1).")
GALLERY = typer.Option(None, "--gallery", help="The gallery `who` names faces from.")


def settings() -> Settings:
    from argus.settings import Settings

    return Settings()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> None:
    # One line however long (a path can be): a terminal wraps it, a log keeps it whole.
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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
        except Exception as exc:
            # An OperationalError can only come from a command that has imported SQLAlchemy;
            # asking sys.modules keeps every other exit (typer.Exit too) from importing it.
            sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
            if sqlalchemy_exc is None or not isinstance(exc, sqlalchemy_exc.OperationalError):
                raise
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            fail(f"the database cannot be used ({reason}); check ARGUS_HOME or "
                 "ARGUS_DATABASE_URL", 1)

    return wrapper  # type: ignore[return-value]
