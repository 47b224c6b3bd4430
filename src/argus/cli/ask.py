"""``argus ask QUESTION IMAGE…`` and ``argus questions …``."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from argus.cli.common import console, err_console, fail, handles_errors, print_json, settings
from argus.errors import ArgusError

questions_app = typer.Typer(help="List and manage questions.", no_args_is_help=True)


@questions_app.command("list")
@handles_errors
def list_questions(json_out: bool = typer.Option(False, "--json")) -> None:
    """The questions this installation can answer."""
    from argus.service import Vision

    vision = Vision(settings())
    items = vision.questions()
    if json_out:
        print_json(items)
        return
    table = Table("question", "models", "available", "description")
    for q in items:
        table.add_row(
            q["name"], ", ".join(q["models"]), "yes" if q["available"] else "no", q["description"]
        )
    console.print(table)


def ask(
    question: str = typer.Argument(..., help="labels, faces, or any registered model or graph."),
    images: list[Path] = typer.Argument(..., help="Image files."),
    top_k: int = typer.Option(None, "--top-k", help="How many labels to show."),
    app: str = typer.Option(None, "--app", help="Answer with this application's pinned versions."),
    version: int = typer.Option(None, "--version", help="Use this exact model version."),
    alias: str = typer.Option(None, "--alias", help="Use the version this alias points at."),
    crops: Path = typer.Option(None, "--crops", help="Write aligned face crops into DIR."),
    draw: Path = typer.Option(None, "--draw", help="Write the image with the answer drawn."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document per image."),
) -> None:
    """Ask a question of one or more images."""
    from argus.service import AskOptions, Vision, parse_top_k

    try:
        options = AskOptions(
            top_k=parse_top_k(top_k),
            app=app,
            version=version,
            alias=alias,
            crops=crops is not None,
            source="cli",
        )
        vision = Vision(settings())
    except ArgusError as exc:
        fail(exc.message, 2)
        return
    failures = 0

    async def run() -> None:
        nonlocal failures
        try:
            for path in images:
                try:
                    data = path.read_bytes()
                    answer = await vision.ask(question, data, options)
                except OSError as exc:
                    failures += 1
                    err_console.print(f"[red]{path}[/]: cannot read: {exc.strerror}")
                    continue
                except ArgusError as exc:
                    failures += 1
                    err_console.print(f"[red]{path}[/]: {exc.message}", highlight=False)
                    if exc.status == 404:
                        raise
                    continue
                _outputs(path, data, answer, crops, draw, len(images) > 1)
                if json_out:
                    print_json({"file": str(path), **answer})
                else:
                    _print_answer(path, answer)
        finally:
            await vision.close()

    try:
        asyncio.run(run())
    except ArgusError:
        raise typer.Exit(2) from None
    if failures:
        raise typer.Exit(2)


def _outputs(
    path: Path,
    data: bytes,
    answer: dict[str, Any],
    crops: Path | None,
    draw: Path | None,
    many: bool,
) -> None:
    faces = answer.get("answer", {}).get("faces")
    if crops is not None and faces is not None:
        crops.mkdir(parents=True, exist_ok=True)
        for i, face in enumerate(faces):
            if "crop_png" in face:
                (crops / f"{path.stem}-face{i}.png").write_bytes(base64.b64decode(face["crop_png"]))
                del face["crop_png"]
                face["crop_file"] = str(crops / f"{path.stem}-face{i}.png")
    if draw is not None:
        from argus.draw import draw_answer

        target = draw if not many else draw.with_name(f"{draw.stem}-{path.stem}{draw.suffix}")
        draw_answer(data, answer).save(target)


def _print_answer(path: Path, answer: dict[str, Any]) -> None:
    body = answer["answer"]
    models = ", ".join(f"{m['name']}:{m['version']}" for m in answer["models"])
    console.print(
        f"[bold]{path}[/] ({answer['image']['width']}x{answer['image']['height']}, "
        f"{models}, {answer['timings_ms']['total']:.1f} ms)",
        highlight=False,
    )
    if "labels" in body:
        table = Table("label", "index", "score")
        for item in body["labels"]:
            table.add_row(item["label"], str(item["index"]), f"{item['score']:.3f}")
        console.print(table)
    if "faces" in body:
        if not body["faces"]:
            console.print("no faces")
        table = Table("face", "box", "score", "landmarks")
        for i, face in enumerate(body["faces"]):
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            marks = " ".join(f"({x:.0f},{y:.0f})" for x, y in face["landmarks"])
            table.add_row(str(i), box, f"{face['score']:.3f}", marks)
        if body["faces"]:
            console.print(table)
    others = {k: v for k, v in body.items() if k not in ("labels", "faces")}
    if others:
        print_json(others)
