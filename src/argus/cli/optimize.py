"""``argus models optimize``: an int8 (or OpenVINO bf16) version of a model, with its agreement
report against the parent; promoted or canaried only when asked, and only on that evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from argus.cli.common import console, handles_errors, print_json

TO = typer.Option("int8", "--to", help="int8 (ONNX Runtime static quantization) or bf16 "
                  "(OpenVINO).")
CALIBRATE = typer.Option(None, "--calibrate", help="A folder of photos like those the model "
                         "will see, to calibrate int8 ranges on (at most 200 are read).")
HELD_OUT = typer.Option(None, "--held-out", help="Compare on these images (default: 252 crops, "
                        "scales and flips of the bundled sample photos).")
PROMOTE = typer.Option(None, "--promote-if-agrees", help="Promote to production (or, with "
                       "--canary, start the canary) only if the agreement is at least this "
                       "(0.99 = 99%).")
CANARY = typer.Option(None, "--canary", help="Send this % (1-100) of un-pinned traffic to the "
                      "new version.")
JSON = typer.Option(False, "--json", help="Print the version, the report and the move as JSON.")


def optimize(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@ALIAS of the parent."),
    to: str = TO,
    calibrate: Path | None = CALIBRATE,
    held_out: Path | None = HELD_OUT,
    promote_if_agrees: float | None = PROMOTE,
    canary: int | None = CANARY,
    json_out: bool = JSON,
) -> None:
    """Make a faster version of a model (int8 or bf16) and measure it against its parent."""
    _optimize(ref, to, calibrate, held_out, promote_if_agrees, canary, json_out)


@handles_errors
def _optimize(ref: str, to: str, calibrate: Path | None, held_out: Path | None,
              promote_if_agrees: float | None, canary: int | None, json_out: bool) -> None:
    from argus.cli.models import _actor, registry
    from argus.cli.train import _bars
    from argus.optimize.run import OptimizeRequest, check
    from argus.optimize.run import optimize as run_optimize

    req = OptimizeRequest(ref=ref, to=to, calibrate=calibrate, held_out=held_out,
                          promote_if_agrees=promote_if_agrees, canary=canary,
                          actor=_actor())
    check(req)  # a wrong flag is refused before the registry is opened
    models = registry()
    say = (lambda _m: None) if json_out else (lambda m: console.print(m, highlight=False))
    with _bars(json_out) as progress:
        result = run_optimize(models, models.store, req, progress, say)
    if json_out:
        print_json({"version": result.version.to_dict(), "created": result.created,
                    "promotion": result.promotion, "report": result.report})
    else:
        v = result.version
        console.print(f"{v.name} version {v.number} ({v.digest[:19]}…): {to} of version "
                      f"{result.report['parent']['version']}"
                      + ("" if result.created else " (the same package was already a version)"),
                      highlight=False)
        for line in agreement_lines(result.report):
            console.print(line, highlight=False)
    moved = result.promotion
    if moved is not None and not moved.get("promoted") and moved.get("canary") is None:
        raise typer.Exit(1)  # asked to move it and the evidence said no


def agreement_lines(report: dict[str, Any]) -> list[str]:
    """The report in a few lines (``models optimize`` and ``models show``)."""
    a = report.get("agreement") or {}
    speed = report.get("speed") or {}
    method = report.get("method") or {}
    held = report.get("held_out") or {}
    details = [f"{k.replace('_', ' ')} {v}" for k, v in a.items()
               if k not in ("agreement", "measure", "images", "disagreements")
               and v is not None]
    lines = [
        f"agreement with the parent: {a.get('measure')} {a.get('agreement', 0):.2%} on "
        f"{a.get('images')} held-out images ({held.get('made_from', '')})",
        "  " + ", ".join(details),
        f"made by {method.get('engine')} ({method.get('format', method.get('to'))}); "
        f"model call {speed.get('parent_ms')} -> {speed.get('new_ms')} ms "
        f"(x{speed.get('speedup')}, batch 1, 1 thread)",
    ]
    for d in (a.get("disagreements") or [])[:5]:
        lines.append("  differs: " + ", ".join(f"{k} {v}" for k, v in d.items()))
    return lines

