"""Training as a durable job: ``POST /v1/train`` queues a zip of class folders, any worker
takes it, trains in a child process (so a stop can end it, and the memory training used is
given back), writes progress on the job as it goes and the report and new version as its
answer.

The zip is stored like a job image (content-addressed, once) and checked twice: when it is
submitted (a zip at all, how many files, how big unpacked, no paths leaving the folder) so a
bad upload is a 400 now rather than a dead job later, and again when it is unpacked.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from argus.errors import ArgusError, BadInput, TooLarge
from argus.settings import Settings

log = logging.getLogger(__name__)

TRAIN_QUESTION = "@train"
"""The job 'question' of a training job (no question can be named so)."""
MAX_FILES = 50_000
MAX_UNPACKED = 4 * 1024**3
"""Bytes a training zip may unpack to (a zip bomb stops here, not at the disk's end)."""


class TrainOptions(BaseModel):
    """What a training job was asked to do (the ``argus train`` flags)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base: str = "efficientnet-lite0"
    val: float = Field(0.2, gt=0, lt=1)
    mode: str = "auto"
    epochs: int = Field(4, ge=1, le=100)
    image_size: int | None = Field(None, ge=64, le=512, multiple_of=32)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    promote_if_better: bool = False
    canary: int | None = Field(None, ge=0, le=100)

    @classmethod
    def parse(cls, fields: dict[str, Any]) -> TrainOptions:
        from argus.models.versions import check_name
        from argus.train import MODES

        # An empty field is a wrong value, not an absent one (the form's schema says so).
        given = {k: v for k, v in fields.items() if k in cls.model_fields and v is not None}
        try:
            options = cls.model_validate(given, strict=False)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadInput(f"{where}: {first['msg']}") from None
        check_name("model", options.name)
        if options.mode not in MODES:
            raise BadInput(f"mode must be one of {', '.join(MODES)}, not {options.mode!r}")
        return options


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The files of the zip, refused whole when one would leave the folder or the total is
    over the limits."""
    files = [m for m in archive.infolist() if not m.is_dir()]
    if not files:
        raise BadInput("the zip holds no files")
    if len(files) > MAX_FILES:
        raise TooLarge(f"the zip holds {len(files):,} files, over the limit of {MAX_FILES:,}")
    total = sum(m.file_size for m in files)
    if total > MAX_UNPACKED:
        raise TooLarge(f"the zip unpacks to {total:,} bytes, over the limit of {MAX_UNPACKED:,}")
    for m in files:
        path = PurePosixPath(m.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or m.filename.startswith("/"):
            raise BadInput(f"the zip entry {m.filename!r} would leave the folder")
        if m.external_attr >> 16 & 0o170000 == 0o120000:
            raise BadInput(f"the zip entry {m.filename!r} is a symbolic link")
    return files


def check_zip(data: bytes) -> int:
    """The number of files in a training zip; BadInput/TooLarge for one that is not fit."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return len(_members(archive))
    except zipfile.BadZipFile as exc:
        raise BadInput(f"the upload is not a zip of class folders: {exc}") from None


def unpack(data: bytes, dest: Path) -> Path:
    """The zip's class folders under ``dest``; a single top folder holding them is entered."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        written = 0
        for m in _members(archive):
            target = dest.joinpath(*PurePosixPath(m.filename.replace("\\", "/")).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(m) as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNPACKED:  # sizes in the header can lie
                        raise TooLarge("the zip unpacks to more than it says")
                    out.write(chunk)
    root = dest
    while True:  # a zip of one folder holding the class folders: enter it
        entries = _visible(root)
        if len(entries) == 1 and entries[0].is_dir() and all(
            q.is_dir() for q in _visible(entries[0])
        ):
            root = entries[0]
        else:
            break
    return root


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]


def zip_of_labelled(files: list[tuple[str, str, bytes]]) -> bytes:
    """A zip of class folders from (label, filename, bytes): how an upload of many files with
    their labels becomes the same job as a zip."""
    from argus.review.dataset import check_label

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for n, (label, filename, data) in enumerate(files):
            name = PurePosixPath(filename.replace("\\", "/")).name or f"photo-{n}"
            archive.writestr(f"{check_label(label)}/{n:05d}-{name}", data)
    return buf.getvalue()


# -- running -----------------------------------------------------------------------------


def _child(settings: dict[str, Any], options: dict[str, Any], folder: str, conn: Any) -> None:
    """The training, in a process of its own; every message goes back through ``conn``."""
    from argus.db.engine import make_engine
    from argus.models.packages import PackageStore
    from argus.models.registry import ModelRegistry
    from argus.train import data as photos
    from argus.train.run import TrainRequest, train

    try:
        config = Settings(**settings)
        engine = make_engine(config.db_url)
        registry = ModelRegistry(engine, PackageStore(config.packages_dir))
        opts = TrainOptions(**options)
        req = TrainRequest(items=photos.from_folder(Path(folder)), actor="train job",
                           **opts.model_dump())
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.5 or done >= total:
                last[0] = now
                conn.send(("progress", {"stage": stage, "done": done, "total": total}))

        result = train(registry, registry.store, config.cache_dir, req, progress,
                       say=lambda m: conn.send(("say", m)))
        conn.send(("done", {
            "version": result.version.to_dict(), "created": result.created,
            "promotion": result.promotion, "report": result.report,
        }))
        engine.dispose()
    except ArgusError as exc:
        conn.send(("error", {"status": exc.status, "message": exc.message}))
    except Exception as exc:  # the parent fails the job with it; nothing else to do here
        conn.send(("error", {"status": 500, "message": f"{type(exc).__name__}: {exc}"}))


class TrainingFailed(ArgusError):
    """The training itself refused (bad photos, unknown base): retrying cannot help."""

    status = 400


def run_training(
    settings: Settings,
    data: bytes,
    options: dict[str, Any],
    on_progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
    timeout: float,
) -> dict[str, Any]:
    """Unpack, train in a child process, return the result; ends the child when
    ``should_stop()`` turns true or ``timeout`` passes."""
    opts = TrainOptions.parse(options)
    work = Path(tempfile.mkdtemp(prefix="argus-train-job-"))
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = None
    try:
        folder = unpack(data, work)
        proc = ctx.Process(
            target=_child,
            args=(settings.model_dump(mode="json"), opts.model_dump(), str(folder), child),
            daemon=True,
        )
        proc.start()
        child.close()
        said: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            if should_stop():
                raise TimeoutError("the worker is stopping")
            if time.monotonic() > deadline:
                raise TimeoutError(f"training took longer than {timeout:.0f}s")
            if not parent.poll(0.5):
                if not proc.is_alive() and not parent.poll(0):
                    raise RuntimeError(f"the training process died (exit code {proc.exitcode})")
                continue
            kind, body = parent.recv()
            if kind == "progress":
                on_progress({**body, "said": said[-5:]})
            elif kind == "say":
                said.append(str(body))
                log.info("train job: %s", body)
            elif kind == "error":
                if body["status"] < 500:
                    raise TrainingFailed(body["message"])
                raise RuntimeError(body["message"])
            elif kind == "done":
                return {**body, "said": said}
    finally:
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        parent.close()
        shutil.rmtree(work, ignore_errors=True)
