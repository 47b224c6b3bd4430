"""Files written whole or not at all, and where content-addressed files live."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(target: Path, data: bytes, tmp_dir: Path | None = None,
                 prefix: str = ".tmp-") -> None:
    """Write ``data`` to a temporary file (in ``tmp_dir``, default the target's folder, which
    must be on the same filesystem), fsync it, then rename it over ``target``: a reader sees
    the old file or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or target.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def addressed(root: Path, digest: str) -> Path:
    """Where the content with ``digest`` (``sha256:HEX`` or bare hex) lives under ``root``:
    ``<root>/sha256/ab/cdef…``. One layout for model packages and job images."""
    algo, _, hexd = digest.rpartition(":")
    return root / (algo or "sha256") / hexd[:2] / hexd[2:]
