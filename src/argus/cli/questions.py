"""``argus questions list|show|add|check|rm``: the question catalogue and user graphs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from argus.cli.common import console, handles_errors, print_json, settings
from argus.cli.tables import Col, fit
from argus.errors import NotFound

if TYPE_CHECKING:
    from argus.core import Core

questions_app = typer.Typer(help="List, show and register questions.", no_args_is_help=True)
app = questions_app


def _core() -> Core:
    from argus.server import local_core

    return local_core(settings())


@questions_app.command("list")
@handles_errors
def list_questions(json_out: bool = typer.Option(False, "--json")) -> None:
    """The questions this installation can answer."""
    core = _core()
    items = core.questions()
    problems = core.catalogue.problems
    core.engine.dispose()
    if json_out:
        print_json(items)
        return
    columns = [Col("question", key=True), Col("kind", drop=2), Col("models"),
               Col("steps", drop=3), Col("available"), Col("description", drop=1)]
    rows = [
        (q["name"], q["kind"], "\n".join(q["models"]), str(len(q["steps"])),
         "yes" if q["available"] else "no", q["description"])
        for q in items
    ]
    console.print(fit(columns, rows))
    for name, why in sorted(problems.items()):
        console.print(f"[yellow]not loaded:[/] {name}: {why}", highlight=False)


@questions_app.command("show")
@handles_errors
def show(name: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """A question's graph: its steps, what each needs, and its YAML."""
    core = _core()
    try:
        question = core.question(name)
        path = core.catalogue.path_of(name) if question.kind == "user" else None
    finally:
        core.engine.dispose()
    graph = question.graph
    if json_out:
        print_json(
            {
                **graph.to_dict(),
                "kind": question.kind,
                "path": str(path) if path else None,
                "yaml": graph.text,
            }
        )
        return
    where = f" ({path})" if path else ""
    console.print(f"[bold]{graph.name}[/] — {question.kind}{where}", highlight=False)
    if graph.description:
        console.print(graph.description, highlight=False)
    table = Table("step", "does", "needs", "when")
    for step in graph.steps.values():
        if step.model is not None:
            does = f"model {step.model}" + (f" on crops of {step.input}" if step.input else "")
        else:
            does = f"{step.op} of {step.source}"
        params = ", ".join(f"{k}={v}" for k, v in step.params.items())
        table.add_row(
            step.name,
            does + (f" ({params})" if params else ""),
            ", ".join(step.needs) or "-",
            step.when.source if step.when else "-",
        )
    console.print(table)
    answer = graph.answer[0] if graph.single else ", ".join(graph.answer)
    console.print(f"answer: {answer}", highlight=False)
    console.print(graph.text.rstrip(), highlight=False, markup=False)


@questions_app.command("add")
@handles_errors
def add(
    path: Path = typer.Argument(..., help="A graph in YAML."),
    replace: bool = typer.Option(False, "--replace", help="Change an existing question."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Validate a graph and register it (copied into ARGUS_HOME/questions)."""
    core = _core()
    try:
        spec, created = core.catalogue.add(path, replace=replace)
        target = core.catalogue.path_of(spec.name)
    finally:
        core.engine.dispose()
    what = "registered" if created else "identical graph already registered"
    if json_out:
        print_json({**spec.to_dict(), "path": str(target), "result": what})
        return
    console.print(
        f"question {spec.name} ({len(spec.steps)} steps, models: "
        f"{', '.join(spec.models()) or 'none'}): {what}",
        highlight=False,
    )


@questions_app.command("check")
@handles_errors
def check(path: Path = typer.Argument(..., help="A graph in YAML.")) -> None:
    """Validate a graph against the registry without registering it."""
    core = _core()
    try:
        spec = core.catalogue.validate(path)
    finally:
        core.engine.dispose()
    console.print(f"{path}: question {spec.name} is valid ({len(spec.steps)} steps)")


@questions_app.command("rm")
@handles_errors
def remove(name: str) -> None:
    """Remove a user question (built-in ones and model questions cannot be removed)."""
    core = _core()
    try:
        if core.catalogue.get(name) is None:
            raise NotFound(f"no user question named {name!r}")
        path = core.catalogue.remove(name)
    finally:
        core.engine.dispose()
    console.print(f"removed question {name} ({path})", highlight=False)
