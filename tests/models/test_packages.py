"""Model packages: content addressing, verification, refusal of tampered files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from argus.errors import BadPackage
from argus.models.packages import (
    PackageStore,
    canonical_digest,
    load_package,
    parse_manifest,
    sha256_file,
)
from argus.tasks.classify import ClassifyFields

FIELDS = {
    "name": "tiny",
    "task": "classify",
    "license": "Apache-2.0",
    "source": {"kind": "file"},
    "labels": "labels.txt",
    "preprocess": {"resize_shorter": 32, "crop": 32},
}


def make_src(tmp_path: Path, payload: bytes = b"onnx bytes") -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "model.onnx").write_bytes(payload)
    (src / "labels.txt").write_text("a\nb\n")
    return src


def test_same_content_same_digest_and_one_copy(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    first = store.add(make_src(tmp_path), FIELDS)
    second = store.add(make_src(tmp_path), FIELDS)
    assert first.digest == second.digest
    assert first.digest.startswith("sha256:")
    assert first.path == store.path_for(first.digest)
    assert first.labels == ["a", "b"]
    assert len(list((tmp_path / "store").rglob("argus.yaml"))) == 1


def test_different_content_different_digest(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    a = store.add(make_src(tmp_path, b"one"), FIELDS)
    b = store.add(make_src(tmp_path, b"two"), FIELDS)
    assert a.digest != b.digest


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    pkg = store.add(make_src(tmp_path), FIELDS)
    (pkg.path / "model.onnx").write_bytes(b"evil bytes")
    with pytest.raises(BadPackage, match="modified"):
        store.load(pkg.digest)


def test_tampered_manifest_is_refused(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    pkg = store.add(make_src(tmp_path), FIELDS)
    manifest = yaml.safe_load((pkg.path / "argus.yaml").read_text())
    manifest["license"] = "proprietary"
    (pkg.path / "argus.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(BadPackage, match="does not match"):
        store.load(pkg.digest)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    pkg = store.add(make_src(tmp_path), FIELDS)
    (pkg.path / "labels.txt").unlink()
    with pytest.raises(BadPackage, match="missing"):
        load_package(pkg.path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "poetry"}, "unknown task"),
        ({"preprocess": {"crop": 300, "resize_shorter": 256}}, "crop"),
        ({"preprocess": {"colour": "RGB"}}, "unknown preprocess"),
        ({"license": None}, None),
    ],
)
def test_bad_manifests(tmp_path: Path, change: dict[str, object], message: str | None) -> None:
    store = PackageStore(tmp_path / "store")
    fields = {**FIELDS, **change}
    if message is None:
        fields.pop("license")
        message = "missing 'license'"
    with pytest.raises(BadPackage, match=message):
        store.add(make_src(tmp_path), fields)


def test_the_manifest_is_typed_and_the_one_written_is_what_the_digest_hashes(
    tmp_path: Path,
) -> None:
    store = PackageStore(tmp_path / "store")
    pkg = store.add(make_src(tmp_path), {**FIELDS, "team": "vision", "runtime": None})
    assert (pkg.manifest.name, pkg.manifest.task, pkg.manifest.license) == (
        "tiny", "classify", "Apache-2.0"
    )
    assert pkg.manifest.source.kind == "file" and pkg.manifest.source.record() == {"kind": "file"}
    assert set(pkg.manifest.files) == {"model.onnx", "labels.txt"}
    assert pkg.manifest.onnx_files() == {"model": "model.onnx"}
    assert pkg.runtime.max_batch_size == 8 and pkg.runtime.max_wait_ms == 2.0  # null: defaults
    assert pkg.fields_as(ClassifyFields).preprocess.crop == 32
    written = yaml.safe_load((pkg.path / "argus.yaml").read_text())
    assert pkg.raw == written and written["team"] == "vision" and written["runtime"] is None
    assert canonical_digest(written) == pkg.digest
    without = store.add(make_src(tmp_path), FIELDS)
    assert without.digest != pkg.digest  # an unknown key is part of the package all the same


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"runtime": {"max_batch_size": 0}}, r"runtime\.max_batch_size: input should be greater"),
        ({"preprocess": {"mean": [1, 2]}}, r"preprocess\.mean must be a number or three numbers"),
        ({"preprocess": {"color": "CMYK"}}, "preprocess.color must be RGB or BGR, not 'CMYK'"),
        ({"source": "somewhere"}, "source: input should be"),
        ({"files": {}}, "manifest 'files' must map file names to sha256"),
        ({"task": "detect", "options": {"iou": 2}}, r"options\.iou must be between 0.0 and 1.0"),
        ({"task": "detect", "options": {"imgsz": "big"}}, r"options\.imgsz must be a positive"),
        ({"task": "faces", "options": {"factor": "fast"}}, r"options\.factor: input should be"),
    ],
)
def test_bad_values_are_refused_naming_their_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(BadPackage, match=message):
        files = {"model.onnx": "0" * 64, "labels.txt": "0" * 64}
        parse_manifest({**FIELDS, "files": files, **change})


@pytest.mark.parametrize("labels", ["../outside.txt", "unlisted.txt"])
def test_a_file_the_manifest_names_must_be_listed_and_hashed(tmp_path: Path, labels: str) -> None:
    src = make_src(tmp_path)
    (tmp_path / "outside.txt").write_text("read from outside the package\n")
    (src / "unlisted.txt").write_text("never hashed\n")
    files = {rel: sha256_file(src / rel) for rel in ("model.onnx", "labels.txt")}
    manifest = {"format": 1, **FIELDS, "labels": labels, "files": files}
    (src / "argus.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(BadPackage, match=f"'labels' names '{labels}', which is not among"):
        load_package(src)
