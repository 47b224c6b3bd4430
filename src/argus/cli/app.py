"""Top-level Typer application."""

from __future__ import annotations

import typer

from argus import __version__
from argus.cli import apps as apps_cmd
from argus.cli import ask as ask_cmd
from argus.cli import gallery as gallery_cmd
from argus.cli import ingest as ingest_cmd
from argus.cli import jobs as jobs_cmd
from argus.cli import models as models_cmd
from argus.cli import optimize as optimize_cmd
from argus.cli import questions as questions_cmd
from argus.cli import records as records_cmd
from argus.cli import review as review_cmd
from argus.cli import serve as serve_cmd
from argus.cli import train as train_cmd
from argus.cli import worker as worker_cmd

app = typer.Typer(
    name="argus",
    help="Argus answers questions about images with versioned ONNX models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"argus {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Argus answers questions about images with versioned ONNX models."""


models_cmd.app.command("optimize")(optimize_cmd.optimize)
app.add_typer(models_cmd.app, name="models")
app.add_typer(apps_cmd.app, name="apps")
app.add_typer(jobs_cmd.app, name="jobs")
app.add_typer(questions_cmd.app, name="questions")
app.add_typer(records_cmd.app, name="records")
app.add_typer(review_cmd.app, name="review")
app.add_typer(gallery_cmd.app, name="gallery")
app.command("ask")(ask_cmd.ask)
app.command("serve")(serve_cmd.serve)
app.command("worker")(worker_cmd.worker)
app.command("ingest")(ingest_cmd.ingest)
app.command("train")(train_cmd.train)
app.command("evaluate")(train_cmd.evaluate)
