"""Top-level Typer application."""

from __future__ import annotations

import typer

from argus.cli import apps as apps_cmd
from argus.cli import ask as ask_cmd
from argus.cli import models as models_cmd
from argus.cli import serve as serve_cmd

app = typer.Typer(
    name="argus",
    help="Argus answers questions about images with versioned ONNX models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_cmd.app, name="models")
app.add_typer(apps_cmd.app, name="apps")
app.add_typer(ask_cmd.questions_app, name="questions")
app.command("ask")(ask_cmd.ask)
app.command("serve")(serve_cmd.serve)
