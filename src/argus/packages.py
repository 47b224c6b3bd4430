"""Model packages: an immutable directory of ONNX files plus an ``argus.yaml`` manifest.

The manifest lists the sha256 of every other file in the package, so the digest of the
manifest's canonical form identifies the whole package. Packages live in a content-addressed
store (``<home>/packages/sha256/ab/cdef…``) and are verified before they are loaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from argus.errors import BadPackage

MANIFEST = "argus.yaml"
FORMAT = 1
TASKS = ("classify", "detect", "faces", "embed")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Preprocess:
    """How pixels become the model's input tensor (classification-style models)."""

    resize_shorter: int = 256
    crop: int = 224
    color: str = "RGB"
    mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    layout: str = "NCHW"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Preprocess:
        data = dict(data or {})
        known = {"resize_shorter", "crop", "color", "mean", "std", "layout"}
        unknown = set(data) - known
        if unknown:
            raise BadPackage(f"unknown preprocess keys: {', '.join(sorted(unknown))}")
        if "mean" in data:
            data["mean"] = _triple(data["mean"], "mean")
        if "std" in data:
            data["std"] = _triple(data["std"], "std")
        pre = cls(**data)
        if pre.color not in ("RGB", "BGR"):
            raise BadPackage(f"preprocess.color must be RGB or BGR, not {pre.color!r}")
        if pre.layout not in ("NCHW", "NHWC"):
            raise BadPackage(f"preprocess.layout must be NCHW or NHWC, not {pre.layout!r}")
        if pre.crop <= 0 or pre.resize_shorter < pre.crop:
            raise BadPackage("preprocess needs 0 < crop <= resize_shorter")
        if any(s == 0 for s in pre.std):
            raise BadPackage("preprocess.std must not contain 0")
        return pre

    def to_dict(self) -> dict[str, Any]:
        return {
            "resize_shorter": self.resize_shorter,
            "crop": self.crop,
            "color": self.color,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": self.layout,
        }


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        v = float(value)
        return (v, v, v)
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return (float(value[0]), float(value[1]), float(value[2]))
    raise BadPackage(f"preprocess.{name} must be a number or three numbers")


@dataclass
class ModelPackage:
    """A verified package on disk."""

    path: Path
    manifest: dict[str, Any]
    digest: str
    labels: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def files(self) -> dict[str, str]:
        return dict(self.manifest.get("files", {}))

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.manifest.get("preprocess"))

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.manifest.get("options") or {})

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(self.manifest.get("runtime") or {})

    def file(self, relname: str) -> Path:
        if relname not in self.files:
            raise BadPackage(f"package {self.name} has no file {relname!r}")
        return self.path / relname

    def onnx_files(self) -> dict[str, Path]:
        models = self.manifest.get("models") or {"model": self.manifest.get("model", "model.onnx")}
        return {key: self.file(rel) for key, rel in models.items()}


def validate_manifest(manifest: dict[str, Any]) -> None:
    for key in ("name", "task", "license", "source", "files"):
        if key not in manifest:
            raise BadPackage(f"manifest is missing {key!r}")
    if manifest["task"] not in TASKS:
        raise BadPackage(f"unknown task {manifest['task']!r}; known tasks: {', '.join(TASKS)}")
    if not isinstance(manifest["files"], dict) or not manifest["files"]:
        raise BadPackage("manifest 'files' must map file names to sha256")
    for rel in manifest["files"]:
        if rel == MANIFEST or rel.startswith("/") or ".." in Path(rel).parts:
            raise BadPackage(f"bad file name in manifest: {rel!r}")
    if manifest["task"] in ("classify", "embed"):
        Preprocess.from_dict(manifest.get("preprocess"))


def read_manifest(path: Path) -> dict[str, Any]:
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BadPackage(f"{path} has no {MANIFEST}")
    try:
        data = yaml.safe_load(mpath.read_text())
    except yaml.YAMLError as exc:
        raise BadPackage(f"{mpath} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BadPackage(f"{mpath} must hold a mapping")
    return data


def load_package(path: Path, expected_digest: str | None = None) -> ModelPackage:
    """Read and verify a package: every listed file must exist with its recorded sha256."""
    manifest = read_manifest(path)
    validate_manifest(manifest)
    for rel, recorded in manifest["files"].items():
        fpath = path / rel
        if not fpath.is_file():
            raise BadPackage(f"package {manifest['name']}: file {rel} is missing")
        actual = sha256_file(fpath)
        if actual != recorded:
            raise BadPackage(
                f"package {manifest['name']}: file {rel} was modified "
                f"(sha256 {actual[:12]}…, manifest says {recorded[:12]}…); refusing to load it"
            )
    digest = canonical_digest(manifest)
    if expected_digest is not None and digest != expected_digest:
        raise BadPackage(
            f"package {manifest['name']}: manifest digest {digest} does not match the "
            f"registered {expected_digest}; refusing to load it"
        )
    labels: list[str] = []
    if manifest.get("labels"):
        labels = (path / manifest["labels"]).read_text().splitlines()
    return ModelPackage(path=path, manifest=manifest, digest=digest, labels=labels)


def build_manifest(src_dir: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Manifest for the files in ``src_dir``: ``fields`` plus the sha256 of every file."""
    files = {
        str(p.relative_to(src_dir)): sha256_file(p)
        for p in sorted(src_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {"format": FORMAT, **fields, "files": files}
    validate_manifest(manifest)
    return manifest


def write_manifest(src_dir: Path, manifest: dict[str, Any]) -> None:
    (src_dir / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


class PackageStore:
    """Content-addressed directory of packages: ``<root>/sha256/ab/cdef…``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        return self.root / algo / hexd[:2] / hexd[2:]

    def add(self, src_dir: Path, fields: dict[str, Any]) -> ModelPackage:
        """Copy ``src_dir`` into the store under the digest of its manifest."""
        manifest = build_manifest(src_dir, fields)
        digest = canonical_digest(manifest)
        dest = self.path_for(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=dest.parent))
            for rel in manifest["files"]:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src_dir / rel, target)
            write_manifest(tmp, manifest)
            try:
                tmp.rename(dest)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not dest.exists():
                    raise
        return load_package(dest, digest)

    def load(self, digest: str) -> ModelPackage:
        path = self.path_for(digest)
        if not path.exists():
            raise BadPackage(f"package {digest} is not in the store at {self.root}")
        return load_package(path, digest)
