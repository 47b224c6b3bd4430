"""Dataset folders: labels that can be folder names, and the export layout train reads."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from argus.errors import BadInput
from argus.review import ExportItem, check_label, dataset_file, export, extension


@pytest.mark.parametrize(
    "label",
    ["", "a/b", "/", "a\\b", ".", "..", ".hidden", "x" * 101, "tab\there", "nul\x00",
     "del\x7f", "csi\x9b", " cat", "cat "],
)
def test_labels_that_cannot_be_a_folder_name_are_refused(label: str) -> None:
    with pytest.raises(BadInput):
        check_label(label)


@pytest.mark.parametrize("label", ["cat", "golden retriever", "é" * 100, "T-shirt_2", "a.b"])
def test_plain_labels_pass(label: str) -> None:
    assert check_label(label) == label


def test_a_dataset_file_is_named_by_its_content(tmp_path: Path) -> None:
    digest = "ab" * 32
    assert dataset_file(tmp_path, "cat", digest, "jpg") == tmp_path / "cat" / f"{digest}.jpg"
    assert [extension(f) for f in ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", None)] == [
        "jpg", "jpg", "png", "webp", "bmp", "gif", "bin"]


def _kept(tmp_path: Path, data: bytes, label: str, ext: str = "png") -> ExportItem:
    digest = hashlib.sha256(data).hexdigest()
    path = tmp_path / "kept" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ExportItem(digest, ext, path, label)


def test_export_writes_one_folder_per_class_and_a_csv(tmp_path: Path) -> None:
    items = [_kept(tmp_path, b"one", "cat"), _kept(tmp_path, b"two", "dog", "jpg"),
             _kept(tmp_path, b"three", "cat"), _kept(tmp_path, b"four", "a/b")]
    result = export(items, to=tmp_path / "out", csv_path=tmp_path / "out.csv")
    files = sorted(p.relative_to(tmp_path / "out").as_posix()
                   for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == sorted([f"cat/{items[0].digest}.png", f"dog/{items[1].digest}.jpg",
                            f"cat/{items[2].digest}.png"])
    assert (tmp_path / "out" / "dog" / f"{items[1].digest}.jpg").read_bytes() == b"two"
    assert result.written == 3
    assert result.skipped is not None and len(result.skipped) == 1  # 'a/b' is no folder name
    with (tmp_path / "out.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["path", "label"]
    assert {(Path(p).name, label) for p, label in rows[1:]} == {
        (f"{items[0].digest}.png", "cat"), (f"{items[1].digest}.jpg", "dog"),
        (f"{items[2].digest}.png", "cat")}
    assert all(Path(p).is_file() and Path(p).is_relative_to(tmp_path / "out")
               for p, _ in rows[1:])


def test_a_csv_alone_lists_the_kept_files(tmp_path: Path) -> None:
    item = _kept(tmp_path, b"one", "cat")
    export([item], csv_path=tmp_path / "list.csv")
    rows = list(csv.reader((tmp_path / "list.csv").open()))
    assert rows[1] == [str(item.path.resolve()), "cat"]
    with pytest.raises(BadInput):
        export([item])
