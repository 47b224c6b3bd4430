"""``argus ask QUESTION IMAGE…``: one answer per image, as tables or JSON."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from argus.cli import common
from argus.cli.common import console, err_console, fail, handles_errors, print_json, settings
from argus.errors import ArgusError

if TYPE_CHECKING:
    from argus.contracts import Answer


@handles_errors
def ask(
    question: str = typer.Argument(..., help="labels, faces, or any registered model or graph."),
    images: list[Path] = typer.Argument(
        ..., help="Image files, folders (every image in them) or - (one image on stdin)."
    ),
    top_k: int = common.TOP_K,
    app: str = common.APP,
    version: int = common.VERSION,
    alias: str = common.ALIAS,
    conf: float = common.CONF,
    gallery: str = common.GALLERY,
    crops: Path = typer.Option(None, "--crops", help="Write aligned face crops into DIR."),
    draw: Path = typer.Option(None, "--draw", help="Write the image with the answer drawn."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document per image."),
    record: bool = typer.Option(
        False, "--record", help="Write a prediction record of each answer (source cli)."
    ),
) -> None:
    """Ask a question of one or more images."""
    from argus.contracts import AskOptions
    from argus.server import local_core

    try:
        fields = {"top_k": top_k, "app": app, "version": version, "alias": alias, "conf": conf,
                  "crops": crops is not None, "record": record, "gallery": gallery}
        options = AskOptions.parse(fields, source="cli")
        s = settings()
        if "lanes" not in s.model_fields_set:  # one image at a time: one lane on every core
            s = s.model_copy(update={"lanes": 1})
        core = local_core(s)
    except ArgusError as exc:
        fail(exc.message, 2)
        return
    failures = 0

    inputs = expand_inputs(images)
    if not inputs:
        fail("no images: the folders given hold no image files", 2)

    async def run() -> None:
        nonlocal failures
        try:
            for path in inputs:
                try:
                    data = sys.stdin.buffer.read() if path == STDIN else path.read_bytes()
                    answer = await core.ask(question, data, options)
                except OSError as exc:
                    failures += 1
                    err_console.print(f"[red]{path}[/]: cannot read: {exc.strerror}",
                                      soft_wrap=True)
                    continue
                except ArgusError as exc:
                    failures += 1
                    err_console.print(f"[red]{path}[/]: {exc.message}", highlight=False,
                                      soft_wrap=True)
                    if exc.status == 404:
                        raise
                    continue
                doc = answer.to_json()
                _outputs(path, data, doc, crops, draw, len(inputs) > 1)
                if json_out:
                    print_json({"file": str(path), **doc})
                else:
                    _print_answer(path, answer, doc)
        finally:
            await core.close()

    try:
        asyncio.run(run())
    except ArgusError:
        raise typer.Exit(2) from None
    if failures:
        raise typer.Exit(2)


STDIN = Path("-")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".mpo"})


def expand_inputs(paths: list[Path]) -> list[Path]:
    """The images to ask of: files as given, every image file of a folder (sorted, not
    recursive), and ``-`` for one image on stdin (at most once)."""
    out: list[Path] = []
    for path in paths:
        if path == STDIN:
            if STDIN in out:
                raise typer.BadParameter("- (stdin) can be given once")
            out.append(STDIN)
        elif path.is_dir():
            out.extend(sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ))
        else:
            out.append(path)
    return out


def _step_results(doc: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(step, result) pairs of an answer's JSON: one unnamed pair for a single-step question,
    else one per answer step."""
    body: dict[str, Any] = doc["answer"]
    steps = doc["steps"]
    if len(steps) > 1 and set(body) <= set(steps):
        return [(name, result) for name, result in body.items() if isinstance(result, dict)]
    return [(None, body)]


def _outputs(
    path: Path,
    data: bytes,
    answer: dict[str, Any],
    crops: Path | None,
    draw: Path | None,
    many: bool,
) -> None:
    if crops is not None:
        _write_crops(path, answer, crops)
    if draw is not None:
        from argus.images.draw import draw_answer

        target = draw if not many else draw.with_name(f"{draw.stem}-{path.stem}{draw.suffix}")
        draw_answer(data, _drawable(answer)).save(target)


def _write_crops(path: Path, answer: dict[str, Any], crops: Path) -> None:
    """Write every base64 crop of the answer to a PNG file and put its name in its place."""
    for step, result in _step_results(answer):
        prefix = f"{path.stem}-{step}" if step else path.stem
        for i, face in enumerate(result.get("faces") or []):
            if "crop_png" in face:
                crops.mkdir(parents=True, exist_ok=True)
                target = crops / f"{prefix}-face{i}.png"
                target.write_bytes(base64.b64decode(face.pop("crop_png")))
                face["crop_file"] = str(target)
        for i, item in enumerate(result.get("crops") or []):
            if isinstance(item, dict) and "png" in item:
                crops.mkdir(parents=True, exist_ok=True)
                target = crops / f"{prefix}-crop{i}.png"
                target.write_bytes(base64.b64decode(item.pop("png")))
                item["file"] = str(target)


def _drawable(answer: dict[str, Any]) -> dict[str, Any]:
    """Faces, objects, people, labels, text lines, face attributes and attention of every
    step, in the shape ``draw_answer`` reads."""
    merged: dict[str, list[Any]] = {
        "faces": [], "objects": [], "people": [], "labels": [], "lines": []
    }
    merged.update(attributes=[], attention=[])
    for _, result in _step_results(answer):
        for key, items in merged.items():
            value = result.get(key)
            if isinstance(value, list):
                items.extend(value)
        # A model step on crops answers one result per crop (face attributes: one face each);
        # the face-mesh model asked alone answers one face, the photo taken as its crop.
        for item in [*(result.get("results") or []), result]:
            if isinstance(item, dict) and isinstance(item.get("attributes"), dict):
                merged["attributes"].append(item["attributes"])
    return merged


def _print_answer(path: Path, answer: Answer, doc: dict[str, Any]) -> None:
    models = ", ".join(f"{m.name}:{m.version}" for m in answer.models)
    cached = ", cached" if answer.cached else ""
    console.print(
        f"[bold]{path}[/] ({answer.image.width}x{answer.image.height}, "
        f"{models}, {answer.timings_ms.total:.1f} ms{cached})",
        highlight=False,
    )
    for step, result in _step_results(doc):
        if step is not None:
            info = answer.steps[step]
            state = f"skipped: {info.skipped}" if info.skipped else f"{info.ms:.1f} ms"
            console.print(f"[bold]{step}[/] ({state})", highlight=False)
        _print_result(result)
    if len(answer.steps) > 1:
        for step, info in answer.steps.items():
            if info.skipped:
                console.print(f"[bold]{step}[/] (skipped: {info.skipped})", highlight=False)


def _similarity(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_result(body: dict[str, Any]) -> None:
    if "labels" in body:
        table = Table("label", "index", "score")
        for item in body["labels"]:
            table.add_row(item["label"], str(item["index"]), f"{item['score']:.3f}")
        console.print(table)
    if "faces" in body:
        if not body["faces"]:
            console.print("no faces")
        if "gallery" in body:  # a who answer: each face's person (or unknown), not landmarks
            table = Table("face", "box", "score", "name", "similarity")
        else:
            table = Table("face", "box", "score", "landmarks")
        for i, face in enumerate(body["faces"]):
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            if "gallery" in body:
                table.add_row(str(i), box, f"{face['score']:.3f}", face.get("name") or "unknown",
                              _similarity(face.get("similarity")))
                continue
            marks = " ".join(f"({x:.0f},{y:.0f})" for x, y in face["landmarks"])
            table.add_row(str(i), box, f"{face['score']:.3f}", marks)
        if body["faces"]:
            console.print(table)
    if "objects" in body:
        if not body["objects"]:
            console.print("no objects")
        else:
            table = Table("object", "label", "box", "score")
            for i, obj in enumerate(body["objects"]):
                box = ", ".join(f"{v:.0f}" for v in obj["box"])
                table.add_row(str(i), obj["label"], box, f"{obj['score']:.3f}")
            console.print(table)
    if "people" in body:
        if not body["people"]:
            console.print("no people")
        else:
            table = Table("person", "box", "score", "landmarks seen", "nose")
            for i, person in enumerate(body["people"]):
                box = ", ".join(f"{v:.0f}" for v in person["box"])
                points: list[dict[str, Any]] = person.get("pose") or []
                seen = sum(p["visibility"] >= 0.5 and p["presence"] >= 0.5 for p in points)
                nose = next((f"({p['x']:.0f},{p['y']:.0f})" for p in points
                             if p["name"] == "nose"), "")
                table.add_row(str(i), box, f"{person['score']:.3f}", f"{seen} of {len(points)}",
                              nose)
            console.print(table)
    if "lines" in body:
        if not body["lines"]:
            console.print("no text")
        else:
            table = Table("line", "text", "score", "box (top-left, bottom-right)")
            for i, line in enumerate(body["lines"]):
                (x1, y1), _, (x2, y2), _ = line["box"]
                table.add_row(str(i), line["text"], f"{line['score']:.3f}",
                              f"({x1:.0f},{y1:.0f}) ({x2:.0f},{y2:.0f})")
            console.print(table)
    text_keys = ("lines", "text") if "lines" in body else ()
    if "gallery" in body:
        console.print(f"gallery {body['gallery']}, threshold {body['threshold']}: "
                      f"{body.get('known', 0)} of {len(body['faces'])} faces named",
                      highlight=False)
    shown = {"labels", "faces", "objects", "people", "gallery", "threshold", "known", *text_keys}
    shown |= _print_face_attributes(body)
    others = {k: v for k, v in body.items() if k not in shown}
    if others:
        print_json(others)


def _print_face_attributes(body: dict[str, Any]) -> set[str]:
    """Tables of a face-attributes step (one result per face crop) and an attention step;
    the keys it showed."""
    from argus.images.draw import face_words

    results = body.get("results")
    faces = [r["attributes"] for r in results or [] if isinstance(r, dict) and "attributes" in r]
    alone = isinstance(body.get("attributes"), dict)  # the face-mesh model asked on its own
    if faces or alone:
        table = Table("face", "smile, mouth", "eyes", "gaze", "head")
        for i, face in enumerate(faces or [body["attributes"]]):
            table.add_row(str(i), *face_words(face))
        console.print(table)
        return {"attributes"} if alone else {"count", "results"}
    if isinstance(body.get("attention"), list):
        table = Table("face", "gaze", "looking at")
        for item in body["attention"]:
            target = item["looking_at"]
            what = target["kind"]
            if "index" in target:
                what = f"{target.get('label', what)} {target['index']} ({target['step']})"
            table.add_row(str(item["face"]), str(item["gaze"]), what)
        console.print(table)
        return {"count", "attention"}
    return set()
