"""Where ingested images go: the image, a JSON sidecar beside it, and ``quarantine/`` for bad
input with a ``NAME.reason.txt``. ``dir:OUT`` writes files (temp name, then rename, so a reader
or a restart never sees half a file); ``s3://bucket/prefix`` writes objects (the ``s3`` extra)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from argus.errors import BadInput, ConfigError
from argus.fsutil import atomic_write

QUARANTINE = "quarantine"


def safe_name(name: str) -> str:
    """A relative POSIX name with no way out of the sink (no '..', no absolute path)."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "/")]
    if not parts or any(p == ".." for p in parts):
        raise BadInput(f"{name!r} is not a usable file name")
    return "/".join(parts)


class Sink(Protocol):
    url: str

    def write(self, name: str, data: bytes, sidecar: dict[str, Any]) -> None:
        """Store the image as NAME and the sidecar as NAME.json (sidecar last)."""

    def quarantine(self, name: str, data: bytes | None, reason: str) -> None:
        """Store bad input under quarantine/NAME with quarantine/NAME.reason.txt."""

    def describe(self) -> str: ...

    def check(self) -> None:
        """Fail at start-up, with a sentence, when the sink cannot be written."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sidecar_bytes(sidecar: dict[str, Any]) -> bytes:
    return (json.dumps(sidecar, indent=2, sort_keys=True, default=str) + "\n").encode()


class DirSink:
    """Files are written into ``OUT/.tmp/`` under a name that says which process writes them,
    then renamed into place; at start-up the leftovers of dead processes of this host (a
    SIGKILL mid-write) are removed, while other live writers sharing the sink are left alone."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = f"dir:{self.root}"
        self.tmp = self.root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-"

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise ConfigError(f"the sink folder {self.root} is not writable")
        self.sweep()

    def sweep(self) -> int:
        """Remove half-written files of processes of this host that no longer run."""
        host = socket.gethostname()
        removed = 0
        for leftover in self.tmp.iterdir():
            writer_host, _, rest = leftover.name.rpartition("-")[0].rpartition("-")
            if writer_host != host or not rest.isdigit() or _alive(int(rest)):
                continue
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def _put(self, rel: str, data: bytes) -> None:
        atomic_write(self.root / rel, data, self.tmp, self._prefix)

    def write(self, name: str, data: bytes, sidecar: dict[str, Any]) -> None:
        name = safe_name(name)
        if name.split("/", 1)[0] == QUARANTINE:
            name = f"_{name}"
        self._put(name, data)
        self._put(f"{name}.json", _sidecar_bytes(sidecar))

    def quarantine(self, name: str, data: bytes | None, reason: str) -> None:
        name = f"{QUARANTINE}/{safe_name(name)}"
        self._put(f"{name}.reason.txt", (reason.rstrip() + "\n").encode())
        if data is not None:
            self._put(name, data)

    def path(self, name: str) -> Path:
        return self.root / safe_name(name)


class S3Sink:
    """An S3-compatible bucket. Credentials and region come the usual boto3 ways; the endpoint
    from ``endpoint_url`` or ``AWS_ENDPOINT_URL`` (MinIO, Ceph, …)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        try:
            import boto3
        except ImportError:
            raise ConfigError(
                "the s3:// sink needs boto3: pip install 'argus-vision[s3]'"
            ) from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url or None)

    def describe(self) -> str:
        return self.url

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise ConfigError(
                f"the S3 bucket {self.bucket!r} cannot be reached or does not exist: {exc}"
            ) from None

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _put(self, rel: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.key(rel), Body=data, ContentType=content_type
        )

    def write(self, name: str, data: bytes, sidecar: dict[str, Any]) -> None:
        name = safe_name(name)
        self._put(name, data, "application/octet-stream")
        self._put(f"{name}.json", _sidecar_bytes(sidecar), "application/json")

    def quarantine(self, name: str, data: bytes | None, reason: str) -> None:
        name = f"{QUARANTINE}/{safe_name(name)}"
        self._put(f"{name}.reason.txt", (reason.rstrip() + "\n").encode(), "text/plain")
        if data is not None:
            self._put(name, data, "application/octet-stream")


def open_sink(spec: str, s3_endpoint: str | None = None) -> Sink:
    """``dir:PATH`` or ``s3://bucket/prefix``."""
    if spec.startswith("dir:") and len(spec) > 4:
        return DirSink(Path(spec[4:]).expanduser())
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[5:].partition("/")
        if not bucket:
            raise ConfigError(f"the S3 sink {spec!r} names no bucket: use s3://BUCKET/PREFIX")
        return S3Sink(bucket, prefix, s3_endpoint)
    raise ConfigError(f"unknown sink {spec!r}: use dir:PATH or s3://BUCKET/PREFIX")
