"""Training jobs: what a training upload must be, checked when submitted and when unpacked."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from argus.errors import BadInput, TooLarge
from argus.jobs import training
from argus.jobs.training import TrainOptions, check_zip, unpack, zip_of_labelled


def make_zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_a_zip_of_one_folder_holding_the_class_folders_is_entered(tmp_path: Path) -> None:
    data = make_zip({"photos/cat/a.jpg": b"1", "photos/coffee/b.jpg": b"2"})
    assert check_zip(data) == 2
    root = unpack(data, tmp_path)
    assert root == tmp_path / "photos"
    assert sorted(p.name for p in root.iterdir()) == ["cat", "coffee"]


@pytest.mark.parametrize(
    ("entries", "symlink", "reason"),
    [
        ({"../escape/a.jpg": b"x"}, None, "would leave the folder"),
        ({"/abs/a.jpg": b"x"}, None, "would leave the folder"),
        ({"cat/a.jpg": b"x"}, "cat/link.jpg", "symbolic link"),
        ({}, None, "holds no files"),
    ],
)
def test_uploads_that_would_write_outside_or_hold_nothing_are_refused(
    entries: dict[str, bytes], symlink: str | None, reason: str, tmp_path: Path
) -> None:
    data = make_zip(entries, symlink)
    with pytest.raises(BadInput, match=reason):
        check_zip(data)
    with pytest.raises(BadInput, match=reason):
        unpack(data, tmp_path)
    assert not (tmp_path.parent / "escape").exists()


def test_not_a_zip_is_a_clear_400() -> None:
    with pytest.raises(BadInput, match="not a zip of class folders"):
        check_zip(b"\xff\xd8\xff\xe0 a jpeg, not a zip")


def test_a_zip_bomb_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(training, "MAX_UNPACKED", 1_000_000)
    data = make_zip({"cat/zeros.png": bytes(5_000_000)})
    assert len(data) < 50_000
    with pytest.raises(TooLarge, match="unpacks to 5,000,000 bytes"):
        check_zip(data)
    monkeypatch.setattr(training, "MAX_FILES", 3)
    with pytest.raises(TooLarge, match="4 files"):
        check_zip(make_zip({f"c/{n}.jpg": b"x" for n in range(4)}))


def test_photos_with_labels_become_class_folders(tmp_path: Path) -> None:
    data = zip_of_labelled([("cat", "a.jpg", b"1"), ("coffee", "../../b.jpg", b"2"),
                            ("cat", "a.jpg", b"3")])
    root = unpack(data, tmp_path)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg")) == [
        "cat/00000-a.jpg", "cat/00002-a.jpg", "coffee/00001-b.jpg"]
    with pytest.raises(BadInput, match="path separator"):
        zip_of_labelled([("../up", "a.jpg", b"1")])


def test_training_options_are_checked_when_submitted() -> None:
    opts = TrainOptions.parse({"name": "cc", "val": "0.3", "epochs": "2", "mode": "head",
                               "promote_if_better": "true", "unknown": "ignored"})
    assert (opts.val, opts.epochs, opts.promote_if_better) == (0.3, 2, True)
    for bad, reason in (({"name": "cc", "mode": "fast"}, "mode must be one of"),
                        ({"name": "Bad Name"}, "must be lower-case"),
                        ({"name": "cc", "val": "1.5"}, "val"),
                        ({"name": "cc", "epochs": "2.5"}, "epochs"),
                        ({}, "name")):
        with pytest.raises(BadInput, match=reason):
            TrainOptions.parse(bad)
