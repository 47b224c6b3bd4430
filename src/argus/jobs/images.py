"""Content-addressed image files for jobs: ``<home>/images/sha256/ab/cdef…``.

Job rows carry only the digest, so a large image never bloats the database and the same image
submitted twice is stored once. Files are written to a temporary name in the same directory and
renamed into place, so a reader never sees half an image, even across a crash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from argus.errors import NotFound
from argus.fsutil import addressed, atomic_write


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return addressed(self.root, sha256)

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(data):
            return digest
        atomic_write(target, data)
        return digest

    def get(self, sha256: str) -> bytes:
        """The bytes of ``sha256``, verified: a damaged file is reported, never answered."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"the job's image sha256:{sha256[:12]}… is not in the image store at {self.root}"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise NotFound(
                f"the stored image sha256:{sha256[:12]}… is damaged (its content changed on disk)"
            )
        return data
