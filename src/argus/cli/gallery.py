"""``argus gallery …``: face identity galleries for ``who`` (create, enrol, list, forget)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from argus.cli.common import console, err_console, handles_errors, print_json, settings
from argus.cli.models import _actor
from argus.cli.tables import Col, fit

if TYPE_CHECKING:
    from argus.galleries.store import GalleryStore

app = typer.Typer(
    help="Face galleries: the people `argus ask who --gallery NAME` names.",
    no_args_is_help=True,
)
REASON = typer.Option(None, "--reason", help="Why (kept in the gallery's audit trail).")


def store() -> GalleryStore:
    from argus.db.engine import make_engine, migrate
    from argus.galleries.store import GalleryStore

    engine = make_engine(settings().db_url)
    migrate(engine)
    return GalleryStore(engine)


@app.command()
@handles_errors
def create(
    name: str,
    app_name: str = typer.Option(None, "--app", help="Only this application may match on it."),
    threshold: float = typer.Option(
        None, "--threshold", help="Cosine similarity that names a face (default 0.363)."
    ),
    reason: str = REASON,
) -> None:
    """Create gallery NAME."""
    from argus.galleries.store import DEFAULT_THRESHOLD

    info = store().create(name, app=app_name, actor=_actor(), reason=reason,
                          threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
    owner = f" for app {info.app}" if info.app else ""
    console.print(f"gallery {name} created{owner}, threshold {info.threshold}", highlight=False)


@app.command()
@handles_errors
def enrol(
    name: str,
    person: str,
    photos: list[Path] = typer.Argument(..., help="Photos of PERSON, one face each."),
    face: int = typer.Option(None, "--face", help="Which face of a photo with several (0, 1…)."),
    keep_photo: bool = typer.Option(
        False, "--keep-photo", help="Keep the photos too (by default only embeddings are kept)."
    ),
    reason: str = REASON,
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Enrol PERSON in gallery NAME from PHOTOS (each face's embedding is stored)."""
    from argus.contracts import Answer, AskOptions
    from argus.galleries.enrol import enrol_photos
    from argus.server import local_core

    items = [(str(p), p.read_bytes()) for p in photos]
    s = settings()
    core = local_core(s.model_copy(update={"lanes": 1}) if "lanes" not in s.model_fields_set
                      else s)
    done = 0

    async def ask(question: str, data: bytes, options: AskOptions) -> Answer:
        nonlocal done
        done += 1
        err_console.print(f"embedding {items[done - 1][0]} ({done}/{len(items)})",
                          highlight=False)
        return await core.ask(question, data, options.model_copy(update={"source": "cli"}))

    async def run() -> dict[str, Any]:
        try:
            return await enrol_photos(ask, core.gallery_store, name, person, items, face=face,
                                      keep_photo=keep_photo, actor=_actor(), reason=reason,
                                      source="cli")
        finally:
            await core.close()

    result = asyncio.run(run())
    if json_out:
        print_json(result)
        return
    kept = f", {result['photos_kept']} photos kept" if result["photos_kept"] else ""
    console.print(f"{person}: {result['enrolled']} faces enrolled in {name} "
                  f"({result['faces']} in all{kept})", highlight=False)


@app.command("list")
@handles_errors
def list_galleries(
    name: str = typer.Argument(None, help="A gallery: list its people."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Galleries, or the people of gallery NAME."""
    st = store()
    if name is None:
        infos = [g.to_dict() for g in st.all()]
        if json_out:
            print_json(infos)
            return
        rows = [(g["name"], g["app"] or "-", str(g["threshold"]), str(len(g["people"])),
                 str(g["faces"])) for g in infos]
        console.print(fit([Col("gallery", key=True), Col("app"), Col("threshold"),
                           Col("people"), Col("faces")], rows))
        return
    info = st.show(name).to_dict()
    if json_out:
        print_json(info)
        return
    console.print(f"[bold]{name}[/] app {info['app'] or '-'}, threshold {info['threshold']}, "
                  f"{info['photos_kept']} photos kept", highlight=False)
    rows = [(p["name"], str(p["faces"])) for p in info["people"]]
    console.print(fit([Col("person", key=True), Col("faces")], rows) if rows else "no one")


@app.command()
@handles_errors
def forget(name: str, person: str, reason: str = REASON) -> None:
    """Remove every embedding (and kept photo) of PERSON from gallery NAME."""
    count = store().forget(name, person, actor=_actor(), reason=reason)
    console.print(f"{person} forgotten from {name} ({count} faces removed)", highlight=False)


@app.command()
@handles_errors
def threshold(name: str, value: float, reason: str = REASON) -> None:
    """Set the cosine similarity at which gallery NAME names a face."""
    info = store().set_threshold(name, value, actor=_actor(), reason=reason)
    console.print(f"{name}: threshold {info.threshold}", highlight=False)


@app.command("rm")
@handles_errors
def remove(name: str, reason: str = REASON) -> None:
    """Delete gallery NAME and everyone in it."""
    count = store().delete(name, actor=_actor(), reason=reason)
    console.print(f"gallery {name} deleted ({count} faces removed)", highlight=False)


@app.command()
@handles_errors
def history(name: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """Gallery NAME's audit trail: who changed what, when and why."""
    events = store().history(name)
    if json_out:
        print_json(events)
        return
    rows = [(e["at"][:19], e["action"], e["person"] or "-", e["actor"],
             str(e["detail"].get("reason") or "-")) for e in events]
    console.print(fit([Col("at"), Col("action"), Col("person"), Col("by"), Col("reason")], rows))
