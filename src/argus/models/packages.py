"""Model packages: an immutable directory of ONNX files plus an ``argus.yaml`` manifest.

The manifest lists the sha256 of every other file in the package, so the digest of the
manifest's canonical form identifies the whole package. Packages live in a content-addressed
store (``<home>/packages/sha256/ab/cdef…``) and are verified before they are loaded: every
file against its sha256, the manifest against :class:`~argus.manifest.Manifest` and
its task's fields (:data:`argus.tasks.TASKS`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from argus.errors import BadPackage
from argus.fsutil import addressed
from argus.manifest import FORMAT, MANIFEST, Manifest, ModelPackage, TaskFields


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


def parse_manifest(raw: dict[str, Any]) -> tuple[Manifest, TaskFields]:
    """The typed manifest and its task's fields; a :class:`BadPackage` saying what is wrong."""
    # Imported here: the task table loads every task and its runtime, which listing or
    # moving versions (``argus models list``) never needs.
    from argus.tasks import task_class

    manifest = Manifest.parse(raw)
    return manifest, task_class(manifest.task).fields.parse(raw)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the package at ``path`` as written (not validated: see
    :func:`parse_manifest`)."""
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
    raw = read_manifest(path)
    manifest, fields = parse_manifest(raw)
    for rel, recorded in manifest.files.items():
        fpath = path / rel
        if not fpath.is_file():
            raise BadPackage(f"package {manifest.name}: file {rel} is missing")
        actual = sha256_file(fpath)
        if actual != recorded:
            raise BadPackage(
                f"package {manifest.name}: file {rel} was modified "
                f"(sha256 {actual[:12]}…, manifest says {recorded[:12]}…); refusing to load it"
            )
    digest = canonical_digest(raw)
    if expected_digest is not None and digest != expected_digest:
        raise BadPackage(
            f"package {manifest.name}: manifest digest {digest} does not match the "
            f"registered {expected_digest}; refusing to load it"
        )
    labels = (path / manifest.labels).read_text().splitlines() if manifest.labels else []
    return ModelPackage(path, manifest, digest, labels, raw=raw, fields=fields)


def build_manifest(src_dir: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Manifest for the files in ``src_dir``: ``fields`` plus the sha256 of every file."""
    files = {
        str(p.relative_to(src_dir)): sha256_file(p)
        for p in sorted(src_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {"format": FORMAT, **fields, "files": files}
    parse_manifest(manifest)
    return manifest


def write_manifest(src_dir: Path, manifest: dict[str, Any]) -> None:
    (src_dir / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


class PackageStore:
    """Content-addressed directory of packages: ``<root>/sha256/ab/cdef…``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        return addressed(self.root, digest)

    def add(self, src_dir: Path, fields: dict[str, Any]) -> ModelPackage:
        """Copy ``src_dir`` into the store under the digest of its manifest."""
        raw = build_manifest(src_dir, fields)
        digest = canonical_digest(raw)
        dest = self.path_for(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=dest.parent))
            for rel in raw["files"]:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src_dir / rel, target)
            write_manifest(tmp, raw)
            try:
                tmp.rename(dest)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not dest.exists():
                    raise
        return load_package(dest, digest)

    def remove(self, digest: str) -> None:
        """Delete a package's files (the registry calls this once no version uses them):
        renamed aside first, so a reader sees the whole package or none of it."""
        path = self.path_for(digest)
        if not path.exists():
            return
        doomed = Path(tempfile.mkdtemp(prefix=".removed-", dir=path.parent))
        with contextlib.suppress(OSError):
            path.rename(doomed / "package")
        shutil.rmtree(doomed, ignore_errors=True)

    def load(self, digest: str) -> ModelPackage:
        path = self.path_for(digest)
        if not path.exists():
            raise BadPackage(f"package {digest} is not in the store at {self.root}")
        return load_package(path, digest)


__all__ = [
    "MANIFEST",
    "PackageStore",
    "build_manifest",
    "canonical_digest",
    "load_package",
    "parse_manifest",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]
