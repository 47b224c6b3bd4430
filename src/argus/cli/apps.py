"""``argus apps …``: applications and the model versions they are pinned to."""

from __future__ import annotations

import typer
from rich.table import Table

from argus.cli.common import console, handles_errors, print_json
from argus.cli.models import _actor, registry
from argus.errors import BadInput

app = typer.Typer(help="Applications and their pinned model versions.", no_args_is_help=True)


@app.command()
@handles_errors
def add(name: str) -> None:
    """Create application NAME."""
    registry().add_app(name, actor=_actor())
    console.print(f"app {name} created")


@app.command()
@handles_errors
def pin(
    app_name: str = typer.Argument(..., metavar="APP"),
    model: str = typer.Argument(...),
    target: str = typer.Argument(..., metavar="VERSION|@ALIAS"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Pin APP to an exact VERSION of MODEL, or to whatever @ALIAS points at."""
    if target.startswith("@"):
        result = registry().pin(app_name, model, alias=target[1:], actor=_actor())
    elif target.isdigit():
        result = registry().pin(app_name, model, version=int(target), actor=_actor())
    else:
        raise BadInput(f"pin to a version number or an @alias, not {target!r}")
    if json_out:
        print_json(result)
    else:
        console.print(f"{app_name}: {model} → {target}")


@app.command("list")
@handles_errors
def list_apps(json_out: bool = typer.Option(False, "--json")) -> None:
    """Applications and their pins."""
    apps = registry().apps()
    if json_out:
        print_json(apps)
        return
    table = Table("app", "pins")
    for a in apps:
        pins = ", ".join(
            f"{p['model']}→{p['version'] if p['version'] is not None else '@' + str(p['alias'])}"
            for p in a["pins"]
        )
        table.add_row(a["name"], pins or "-")
    console.print(table)
