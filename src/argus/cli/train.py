"""``argus train`` and ``argus evaluate``: labelled photos to a new, evaluated model version,
and the same report for any version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from argus.cli.common import console, handles_errors, print_json, settings
from argus.cli.tables import Col, fit

DATA = typer.Option(None, "--data", help="A folder with one subfolder of photos per class "
                    "(train's default: ARGUS_HOME/datasets/NAME, where review labels go).")
CSV = typer.Option(None, "--csv", help="A CSV of path,label rows (instead of --data).")
JSON = typer.Option(False, "--json", help="Print the whole report as JSON.")


@contextmanager
def _bars(quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage (reading, embedding, each epoch), on stderr."""
    if quiet:
        yield lambda _s, _d, _t: None
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console.__class__(stderr=True), transient=False)
    tasks: dict[str, Any] = {}
    with bars:
        def update(stage: str, done: int, total: int) -> None:
            key = stage.split(" (")[0] if stage.startswith("fine-tuning") else stage
            if key not in tasks:
                tasks[key] = bars.add_task(stage, total=max(total, 1))
            bars.update(tasks[key], completed=done, total=max(total, 1), description=stage)

        yield update


def _items(data: Path | None, csv: Path | None, default: Path | None = None
           ) -> list[tuple[Path, str]]:
    """The photos of --data or --csv; with neither, the model's dataset folder (where
    ``argus review label`` files photos) when it exists."""
    from argus.errors import BadInput
    from argus.train import data as photos

    if data is not None and csv is not None:
        raise BadInput("give the photos as --data DIR or as --csv FILE, not both")
    if csv is not None:
        return photos.from_csv(csv)
    if data is None and default is not None and default.is_dir():
        data = default
    if data is None:
        where = f" (or label photos into {default} with argus review label)" if default else ""
        raise BadInput(f"give the photos as --data DIR or as --csv FILE{where}")
    return photos.from_folder(data)


def print_report(report: dict[str, Any], title: str, photos: str = "held-out photos") -> None:
    held = report
    console.print(f"[bold]{title}[/]")
    rows = [
        (c["label"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
         str(c["support"]))
        for c in held["per_class"]
    ]
    console.print(fit([Col("class", key=True), Col("precision"), Col("recall"), Col("F1"),
                       Col("support")], rows))
    console.print(f"accuracy [bold]{held['accuracy']:.2%}[/], macro-F1 "
                  f"[bold]{held['macro_f1']:.3f}[/] on {held['images']} {photos}")
    t = held["threshold"]
    if t.get("value") is not None:
        console.print(f"recommended threshold {t['value']}: answers at or above it were "
                      f"{t['precision']:.1%} right and cover {t['coverage']:.0%} of photos")
    else:
        console.print(f"no recommended threshold: {t.get('why', '')}")
    if held["worst_mistakes"]:
        console.print("worst mistakes (most confident first):")
        for m in held["worst_mistakes"][:5]:
            console.print(f"  {m['path']}: {m['label']} taken for {m['guess']} ({m['score']})",
                          highlight=False, soft_wrap=True)


def train(
    name: str = typer.Argument(..., help="The model to add a version to (created if new)."),
    data: Path | None = DATA,
    csv: Path | None = CSV,
    base: str = typer.Option("efficientnet-lite0", "--base",
                             help="NAME[:VERSION|@ALIAS] of a classifier with a features output."),
    val: float = typer.Option(0.2, "--val", help="Share of each class held out to score on."),
    val_data: Path | None = typer.Option(None, "--val-data",
                                         help="Score on this folder instead of a split."),
    mode: str = typer.Option("auto", "--mode", help="head, finetune or auto."),
    epochs: int = typer.Option(4, "--epochs", help="Fine-tuning epochs."),
    image_size: int | None = typer.Option(None, "--image-size",
                                          help="Fine-tuning input side (default: from photos)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the training."),
    promote_if_better: bool = typer.Option(
        False, "--promote-if-better",
        help="Promote to production only if it beats production on the held-out photos."),
    canary: int | None = typer.Option(None, "--canary", help="Send this % of traffic to it."),
    json_out: bool = JSON,
) -> None:
    """Train a new version of NAME from labelled photos, register it and print its report."""
    _train(name, data, csv, base, val, val_data, mode, epochs, image_size, seed,
           promote_if_better, canary, json_out)


@handles_errors
def _train(name: str, data: Path | None, csv: Path | None, base: str, val: float,
           val_data: Path | None, mode: str, epochs: int, image_size: int | None, seed: int,
           promote_if_better: bool, canary: int | None, json_out: bool) -> None:
    from argus.cli.models import registry
    from argus.train import data as photos
    from argus.train.run import TrainRequest
    from argus.train.run import train as run_train

    config = settings()
    models = registry()
    req = TrainRequest(
        name=name, items=_items(data, csv, config.dataset_dir(name)), base=base, val=val,
        val_items=photos.from_folder(val_data) if val_data else None, mode=mode,
        epochs=epochs, image_size=image_size, seed=seed, promote_if_better=promote_if_better,
        canary=canary,
    )
    say = (lambda _m: None) if json_out else (lambda m: console.print(m, highlight=False))
    with _bars(json_out) as progress:
        result = run_train(models, models.store, config.cache_dir, req, progress, say)
    report = result.report
    if json_out:
        print_json({"version": result.version.to_dict(), "created": result.created,
                    "promotion": result.promotion, "report": report})
        return
    checks = report["checks"]
    for key, what in (("unreadable", "unreadable, skipped"), ("duplicates", "duplicates, skipped"),
                      ("conflicting", "under several labels, skipped"),
                      ("leaked", "held-out photos also in training, dropped")):
        if checks[key]:
            console.print(f"{len(checks[key])} {what}: "
                          + ", ".join(str(next(iter(c.values())) if isinstance(c, dict) else c)
                                      for c in checks[key][:5]), highlight=False)
    print_report(report["held_out"], f"{name} version {result.version.number}, trained in "
                 f"{report['mode']} mode")
    alt = report["alternatives"]
    if len(alt) > 1:
        console.print("compared: " + ", ".join(f"{k} {v['accuracy']:.2%}" for k, v in alt.items()))
    console.print(f"took {report['seconds']['total']:.0f} s; confusion.png and curves.png in",
                  highlight=False)
    console.print(str(result.version.path), highlight=False, soft_wrap=True)
    if not result.created:
        console.print("the same package was already a version; nothing new was registered")


def evaluate(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@ALIAS."),
    data: Path | None = DATA,
    csv: Path | None = CSV,
    json_out: bool = JSON,
    picture: Path | None = typer.Option(None, "--picture",
                                        help="Write the confusion matrix PNG here."),
) -> None:
    """Score a model version on labelled photos: the report `argus train` prints."""
    _evaluate(ref, data, csv, json_out, picture)


@handles_errors
def _evaluate(ref: str, data: Path | None, csv: Path | None, json_out: bool,
              picture: Path | None) -> None:
    from argus.cli.models import registry
    from argus.train import data as photos
    from argus.train.evaluate import evaluate as run_evaluate
    from argus.train.report import confusion_png
    from argus.train.run import resolve

    models = registry()
    info, package = resolve(models, models.store, ref)
    with _bars(json_out) as progress:
        dataset = photos.read(_items(data, csv),
                              progress=lambda d, t: progress("reading photos", d, t))
        report = run_evaluate(package, dataset.examples,
                              progress=lambda d, t: progress("scoring", d, t))
    report["checks"] = dataset.checks.to_json()
    if picture:
        picture.write_bytes(confusion_png(report["confusion"], report["classes"]))
    if json_out:
        print_json({"model": info.ref(), "report": report})
        return
    print_report(report, f"{info.name} version {info.number}", "photos")
    if picture:
        console.print(f"confusion matrix: {picture}", highlight=False, soft_wrap=True)
