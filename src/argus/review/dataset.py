"""Dataset folders: what a label turns a kept image into, and what ``argus train NAME --data
DIR`` reads. One subfolder per class label, each image under its content's name:
``<dir>/<label>/<sha256 hex>.<ext>`` (the original bytes; the extension from the detected
format). A label becomes a folder name, so :func:`check_label` refuses anything that is not a
plain one."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from argus.errors import BadInput
from argus.fsutil import atomic_write

MAX_LABEL = 100
#: The label rule as one pattern (published in the OpenAPI document; :func:`check_label`
#: applies it, with a reason per broken part): 1-100 characters, no path separator or control
#: character, no leading dot, no whitespace at either end.
LABEL_PATTERN = (
    r"^[^\s./\\\x00-\x1f\x7f-\x9f]"
    r"(?:[^/\\\x00-\x1f\x7f-\x9f]{0,98}[^\s/\\\x00-\x1f\x7f-\x9f])?$"
)
#: Pillow's format name → the file extension and content type a kept image gets.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),  # a JPEG with extra frames: the first is a plain JPEG
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "BMP": ("bmp", "image/bmp"),
    "GIF": ("gif", "image/gif"),
}
CONTENT_TYPES = {ext: kind for ext, kind in FORMATS.values()}


def extension(image_format: str | None) -> str:
    """The extension of a Pillow format name (``bin`` for one Argus does not read)."""
    return FORMATS.get((image_format or "").upper(), ("bin", ""))[0]


def content_type(ext: str) -> str:
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def check_label(label: str) -> str:
    """``label`` when it can be a folder name on any system, else BadInput with the reason:
    not empty, at most 100 characters, no path separator or control character, no leading
    dot (which also refuses ``.`` and ``..``; a hidden folder is one a reader skips) and no
    space at either end."""
    if not label:
        raise BadInput("the label is empty")
    if len(label) > MAX_LABEL:
        raise BadInput(f"the label is {len(label)} characters long; at most {MAX_LABEL}")
    if "/" in label or "\\" in label:
        raise BadInput(f"the label {label!r} holds a path separator; it becomes a folder name")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in label):
        raise BadInput(f"the label {label!r} holds a control character")
    if label.startswith("."):
        raise BadInput(f"the label {label!r} starts with a dot; it becomes a folder name")
    if label != label.strip():
        raise BadInput(f"the label {label!r} starts or ends with a space")
    if not re.fullmatch(LABEL_PATTERN, label):  # the same rule, as the document publishes it
        raise BadInput(f"the label {label!r} cannot be a folder name")
    return label


def dataset_file(data_dir: Path, label: str, digest: str, ext: str) -> Path:
    """Where an image of class ``label`` lives in a dataset folder."""
    return data_dir / check_label(label) / f"{digest}.{ext}"


def file_image(data_dir: Path, label: str, digest: str, ext: str, data: bytes) -> Path:
    """Write the image into ``data_dir`` under ``label`` (whole or not at all); the same
    content under the same label is the same file, so filing twice writes once."""
    target = dataset_file(data_dir, label, digest, ext)
    if not target.exists():
        atomic_write(target, data)
    return target


@dataclass(frozen=True)
class ExportItem:
    """One kept image to export: where its bytes are and under which class it goes."""

    digest: str
    ext: str
    path: Path
    label: str


@dataclass
class Exported:
    written: int = 0
    skipped: list[str] | None = None
    """Digests left out, each with why (a guess that cannot be a folder name, a lost file)."""

    def skip(self, digest: str, why: str) -> None:
        self.skipped = [*(self.skipped or []), f"{digest[:12]}: {why}"]


def export(items: Iterable[ExportItem], to: Path | None = None, csv_path: Path | None = None
           ) -> Exported:
    """Copy ``items`` into ``to`` as a dataset folder and/or list them in ``csv_path`` as
    ``path,label`` rows (the copies' paths when ``to`` is given, else the kept files')."""
    if to is None and csv_path is None:
        raise BadInput("export needs a folder (--to) or a CSV file (--csv)")
    result = Exported()
    rows: list[tuple[str, str]] = []
    for item in items:
        try:
            check_label(item.label)
        except BadInput as exc:
            result.skip(item.digest, exc.message)
            continue
        if not item.path.is_file():
            result.skip(item.digest, "its kept file is gone")
            continue
        path = item.path
        if to is not None:
            path = dataset_file(to, item.label, item.digest, item.ext)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item.path, path)
        rows.append((str(path.resolve()), item.label))
        result.written += 1
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(("path", "label"))
            writer.writerows(rows)
    return result
