from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from argus.errors import BadInput, NotFound
from argus.train import data as photos
from tests.train.conftest import write_digits


def test_a_folder_of_class_folders_is_read_with_digests(digits: Path) -> None:
    dataset = photos.read(photos.from_folder(digits))
    assert dataset.classes == ["0", "1", "7"]
    assert dataset.counts() == {"0": 10, "1": 10, "7": 10}
    assert all(len(e.digest) == 64 for e in dataset.examples)
    assert dataset.checks.unreadable == [] and dataset.checks.warnings == []


def test_the_dataset_digest_depends_on_photos_and_labels_not_on_names(
    digits: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(digits, moved)
    for n, path in enumerate(sorted((moved / "7").iterdir())):
        path.rename(path.with_name(f"renamed-{n}.png"))
    assert photos.read(photos.from_folder(moved)).digest == \
        photos.read(photos.from_folder(digits)).digest
    # one photo filed under another label: a different dataset
    seven = sorted((moved / "7").iterdir())[0]
    shutil.move(str(seven), moved / "1" / seven.name)
    assert photos.read(photos.from_folder(moved)).digest != \
        photos.read(photos.from_folder(digits)).digest


def test_unreadable_duplicate_and_conflicting_photos_are_skipped_and_reported(
    digits: Path, tmp_path: Path
) -> None:
    root = tmp_path / "d"
    shutil.copytree(digits, root)
    (root / "0" / "empty.png").write_bytes(b"")
    (root / "0" / "notes.jpg").write_text("not a photo")
    first_one = sorted((root / "1").iterdir())[0]
    shutil.copy(first_one, root / "1" / "copy.png")  # same label: a duplicate
    first_seven = sorted((root / "7").iterdir())[0]
    shutil.copy(first_seven, root / "0" / "which.png")  # two labels: conflicting
    dataset = photos.read(photos.from_folder(root))
    checks = dataset.checks
    assert {Path(p).name for p, _ in checks.unreadable} == {"empty.png", "notes.jpg"}
    assert any("empty" in why for _, why in checks.unreadable)
    assert [Path(p).name for p, _ in checks.duplicates] in (["copy.png"], [first_one.name])
    assert {Path(p).name for p, _ in checks.conflicting} == {"which.png", first_seven.name}
    # the conflicting photo is in neither class; the duplicate counts once
    assert dataset.counts() == {"0": 10, "1": 10, "7": 9}


def test_too_few_photos_in_a_class_is_refused_with_the_class_named(tmp_path: Path) -> None:
    write_digits(tmp_path, (3,), 5)
    write_digits(tmp_path, (4,), 1)
    with pytest.raises(BadInput, match=r"too few: 4 \(1\)"):
        photos.read(photos.from_folder(tmp_path))


def test_one_class_is_refused(tmp_path: Path) -> None:
    write_digits(tmp_path, (3,), 5)
    with pytest.raises(BadInput, match="at least two classes"):
        photos.read(photos.from_folder(tmp_path))


def test_small_and_imbalanced_classes_are_warned_about(tmp_path: Path) -> None:
    write_digits(tmp_path, (2,), 30)
    write_digits(tmp_path, (5,), 3)
    warnings = photos.read(photos.from_folder(tmp_path)).checks.warnings
    assert any("fewer than 10" in w and "5 (3)" in w for w in warnings)
    assert any("imbalanced" in w and "10x" in w for w in warnings)


def test_a_csv_of_paths_and_labels(digits: Path, tmp_path: Path) -> None:
    rows = ["path,label"] + [f"{p},{p.parent.name}" for p in sorted(digits.rglob("*.png"))]
    csv = tmp_path / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    from_csv = photos.read(photos.from_csv(csv)).digest
    assert from_csv == photos.read(photos.from_folder(digits)).digest
    (tmp_path / "bad.csv").write_text("only-a-path.png\n")
    with pytest.raises(BadInput, match="line 1: expected path,label"):
        photos.from_csv(tmp_path / "bad.csv")


def test_a_csv_label_that_cannot_be_a_folder_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "up.csv").write_text("a.png,../up\n")
    with pytest.raises(BadInput, match="path separator"):
        photos.from_csv(tmp_path / "up.csv")


def test_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        photos.from_folder(tmp_path / "nope")


def test_the_split_is_stratified_and_depends_only_on_photos_and_seed(digits: Path) -> None:
    dataset = photos.read(photos.from_folder(digits))
    train, held = photos.split(dataset, 0.2, seed=3)
    assert sorted(e.label for e in held) == ["0", "0", "1", "1", "7", "7"]
    assert not {e.digest for e in train} & {e.digest for e in held}
    again = photos.split(photos.read(list(reversed(photos.from_folder(digits)))), 0.2, seed=3)
    assert [e.digest for e in again[1]] == [e.digest for e in held]
    other = photos.split(dataset, 0.2, seed=4)
    assert {e.digest for e in other[1]} != {e.digest for e in held}


def test_held_out_photos_that_are_also_training_photos_are_dropped(
    digits: Path, tmp_path: Path
) -> None:
    held_dir = tmp_path / "held"
    write_digits(held_dir, (0, 1, 7), 3, offset=10)
    shutil.copy(sorted((digits / "0").iterdir())[0], held_dir / "0" / "leak.png")
    train = photos.read(photos.from_folder(digits)).examples
    held = photos.read(photos.from_folder(held_dir))
    kept = photos.drop_leaked(train, held)
    assert len(kept) == 9
    assert [Path(p).name for p in held.checks.leaked] == ["leak.png"]
