"""``argus review list|label|export|discard``: images kept for review (``argus serve
--keep-uncertain``) with the model's guess; a label files the image into the model's dataset
folder, which ``argus train NAME`` reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from argus.cli.common import console, err_console, fail, handles_errors, print_json, settings
from argus.cli.tables import Col, fit

if TYPE_CHECKING:
    from argus.review import ReviewStore
    from argus.settings import Settings

T = TypeVar("T")
review_app = typer.Typer(help="Images kept for review: list, label, export.",
                         no_args_is_help=True)
app = review_app

#: Columns of ``review list``; the digest prefix is what a user types back.
COLUMNS = (
    Col("digest", key=True), Col("model"), Col("guess"), Col("score"), Col("reason", drop=2),
    Col("label"), Col("kept", drop=1),
)
SHOWN_DIGEST = 12


def _with_store(work: Callable[[ReviewStore, Settings], T]) -> T:
    """Run ``work(store, settings)`` on the home's review store (no models loaded)."""
    from argus.db.engine import make_engine, migrate
    from argus.review import ReviewStore

    config = settings()
    engine = make_engine(config.db_url)
    try:
        migrate(engine)
        store = ReviewStore(engine, config.review_dir, config.review_budget_mb * 1024 * 1024,
                            config.dataset_dir)
        return work(store, config)
    finally:
        engine.dispose()


@review_app.callback()
def review() -> None:
    """Images kept for review: classify answers whose top score was under the keep-uncertain
    threshold, or on which a canary and production disagreed."""


@review_app.command("list")
@handles_errors
def list_kept(
    model: str = typer.Option(None, "--model", help="Only this model's images."),
    reason: str = typer.Option(None, "--reason", help="uncertain or disagreement."),
    labelled: bool = typer.Option(
        None, "--labelled/--unlabelled", help="Only labelled images, or only those to label."
    ),
    limit: int = typer.Option(100, "--limit", help="At most this many (newest first)."),
    after: str = typer.Option(None, "--after", help="Page on after this digest."),
    json_out: bool = typer.Option(False, "--json", help="Every field, as JSON."),
) -> None:
    """Kept images, newest first, with the model's guess and the label given."""
    items, used, budget = _with_store(lambda store, config: (
        store.items(model=model, reason=reason, labelled=labelled, limit=limit, after=after),
        store.used_bytes(),
        store.budget_bytes,
    ))
    if json_out:
        print_json(items)
        return
    rows = [
        [
            item["digest"][:SHOWN_DIGEST],
            f"{item['model']}:{item['version']}",
            item["guess"],
            f"{item['score']:.3f}",
            item["reason"],
            item["label"] or "",
            str(item["created_at"])[:16].replace("T", " "),
        ]
        for item in items
    ]
    console.print(fit(COLUMNS, rows))
    console.print(
        f"{len(items)} image(s); kept images take {used / 2**20:.1f} MB of {budget / 2**20:.0f}"
    )


@review_app.command("label")
@handles_errors
def label(
    digest: str = typer.Argument(
        ..., metavar="DIGEST", help="The image's digest (or its first 8+ characters)."
    ),
    label_: str = typer.Argument(..., metavar="LABEL", help="The image's class."),
    data: Path = typer.Option(
        None, "--data", help="Dataset folder to file it in (default: ARGUS_HOME/datasets/MODEL)."
    ),
    json_out: bool = typer.Option(False, "--json", help="The labelled image, as JSON."),
) -> None:
    """Give a kept image its class, filing it into a dataset folder.

    The image is filed as LABEL/<digest>.<ext> in the model's dataset folder
    (ARGUS_HOME/datasets/MODEL, or --data); a new label moves it."""
    item = _with_store(lambda store, config: store.label(digest, label_, data))
    if json_out:
        print_json(item)
        return
    console.print(f"{item['digest'][:SHOWN_DIGEST]} is {item['label']}: {item['filed']}",
                  highlight=False)


@review_app.command("export")
@handles_errors
def export(
    to: Path = typer.Option(None, "--to", help="Copy the images into DIR/<label>/."),
    csv: Path = typer.Option(None, "--csv", help="Write FILE with one path,label row each."),
    model: str = typer.Option(None, "--model", help="Only this model's images."),
    guesses: bool = typer.Option(
        False, "--all", help="Unlabelled images too, under the model's guess."
    ),
) -> None:
    """Copy labelled images out as a dataset folder and/or a CSV.

    The folder has one subfolder per class (what `argus train NAME --data DIR` reads); the CSV
    one path,label row per image. With --all, unlabelled images go under the model's guess."""
    from argus.review import export as write

    if to is None and csv is None:
        fail("give --to DIR, --csv FILE or both", 2)
    result = _with_store(lambda store, config: write(
        store.export_items(model=model, guesses=guesses), to=to, csv_path=csv
    ))
    where = " and ".join(str(p) for p in (to, csv) if p is not None)
    console.print(f"{result.written} image(s) exported to {where}", highlight=False)
    for skipped in result.skipped or []:
        err_console.print(f"left out {skipped}", highlight=False)


@review_app.command("discard")
@handles_errors
def discard(
    digest: str = typer.Argument(
        ..., metavar="DIGEST", help="The image's digest (or its first 8+ characters)."
    ),
) -> None:
    """Forget a kept image (a copy its label filed in a dataset stays there)."""
    _with_store(lambda store, config: store.discard(digest))
    console.print(f"discarded {digest}", highlight=False)
