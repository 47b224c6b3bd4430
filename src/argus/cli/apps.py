"""``argus apps …``: applications and the model versions they are pinned to."""

from __future__ import annotations

from typing import Any

import typer

from argus.cli.common import console, handles_errors, print_json
from argus.cli.models import _actor, registry
from argus.cli.tables import Col, fit
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
    from argus.models.versions import check_version

    if target.startswith("@"):
        result = registry().pin(app_name, model, alias=target[1:], actor=_actor())
    else:
        try:
            version = check_version(target)
        except BadInput:
            raise BadInput(f"pin to a version number or an @alias, not {target!r}") from None
        result = registry().pin(app_name, model, version=version, actor=_actor())
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
    rows = [(a["name"], "\n".join(_pin_text(p) for p in a["pins"]) or "-") for a in apps]
    console.print(fit([Col("app", key=True), Col("pins")], rows))


def _pin_text(pin: dict[str, Any]) -> str:
    target = pin["version"] if pin["version"] is not None else "@" + str(pin["alias"])
    return f"{pin['model']}→{target}"


@app.command()
@handles_errors
def show(app_name: str = typer.Argument(..., metavar="APP"),
         json_out: bool = typer.Option(False, "--json")) -> None:
    """APP's pins and its history (created, pinned, unpinned)."""
    shown = registry().app(app_name)
    if json_out:
        print_json(shown)
        return
    console.print(f"[bold]{shown['name']}[/]", highlight=False)
    for pin in shown["pins"]:
        console.print(f"  {_pin_text(pin)}", highlight=False)
    rows = [
        (e["at"][:19], e["action"], str(e["detail"].get("model") or "-"),
         str(e["to_version"] or e["from_version"] or ("@" + e["alias"] if e["alias"] else "-")),
         e["actor"])
        for e in shown["history"]
    ]
    console.print(fit([Col("at", drop=1), Col("action"), Col("model"), Col("target"),
                       Col("by", drop=2)], rows))


@app.command()
@handles_errors
def unpin(app_name: str = typer.Argument(..., metavar="APP"), model: str = typer.Argument(...)
          ) -> None:
    """Drop APP's pin of MODEL: it then gets what un-pinned requests get."""
    registry().app_pins.unpin(app_name, model, actor=_actor())
    console.print(f"{app_name}: {model} unpinned")


@app.command("rm")
@handles_errors
def remove(app_name: str = typer.Argument(..., metavar="APP")) -> None:
    """Remove APP and its pins; requests that name it are refused afterwards."""
    registry().app_pins.remove(app_name, actor=_actor())
    console.print(f"app {app_name} removed")
