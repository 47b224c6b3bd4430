"""What the registry answers: versions and models as plain values, independent of the
database session that read them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from argus.contracts import MAX_VERSION, parse_int
from argus.errors import BadInput

#: A model, alias or app name, as the registry takes it; the OpenAPI document publishes the
#: same pattern (JSON Schema's ``$`` is the end of the text, as ``fullmatch`` is here).
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
#: An alias name: a name that is not all digits, since a number names a version wherever a
#: version or an alias may stand (``--pin m=3``, KServe's ``/versions/{version}``).
ALIAS_PATTERN = r"^(?:[a-z][a-z0-9._-]{0,99}|[0-9][0-9]{0,98}[a-z._-][a-z0-9._-]{0,98})$"
NAME_LENGTH = 100
_NAME = re.compile(NAME_PATTERN.strip("^$"))


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadInput(
            f"{kind} name {name!r} must be lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    check_name("alias", alias)
    if alias.isdigit():
        raise BadInput(f"alias name {alias!r} is all digits, which reads as a version number")
    return alias


def check_version(value: Any, what: str = "version") -> int:
    """A version number as the registry stores it (1 to 2**31-1): the one check every
    transport's number goes through, so none reaches the database out of range."""
    number = parse_int(what, value, 1, MAX_VERSION)
    if number is None:
        raise BadInput(f"{what} is missing")
    return number


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """A model reference as people type it: NAME, NAME:VERSION or NAME@ALIAS."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, None, check_name("alias", alias)
    if ":" in ref:
        name, number = ref.split(":", 1)
        if not number.isascii() or not number.isdigit():
            raise BadInput(f"{ref!r}: the version after ':' must be a number")
        return name, int(number), None
    return ref, None, None


def canary_bucket(route_key: str) -> int:
    """0..99 for a routing key (the image digest): a canary at p% takes buckets below p, so a
    repeated image always goes the same way."""
    return int(hashlib.sha256(route_key.encode()).hexdigest()[:8], 16) % 100


@dataclass
class VersionInfo:
    name: str
    number: int
    digest: str
    task: str
    path: Path
    aliases: list[str] = field(default_factory=list)
    license: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    parent_version: int | None = None
    training_data_digest: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    created_by: str = ""
    created_at: datetime | None = None

    def ref(self) -> dict[str, Any]:
        """How an answer names the exact version it used."""
        return {"name": self.name, "version": self.number, "digest": self.digest}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.number,
            "digest": self.digest,
            "task": self.task,
            "aliases": self.aliases,
            "license": self.license,
            "source": self.source,
            "parent_version": self.parent_version,
            "training_data_digest": self.training_data_digest,
            "metrics": self.metrics,
            "labels": self.labels,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "path": str(self.path),
        }


@dataclass
class ModelInfo:
    name: str
    task: str
    versions: list[VersionInfo]
    aliases: dict[str, int]
    canary_percent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "aliases": self.aliases,
            "canary_percent": self.canary_percent,
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass
class Registered:
    version: VersionInfo
    created: bool


def event_dict(row: Any) -> dict[str, Any]:
    """An audit event (a row of ``audit_events``) as the history shows it."""
    return {
        "id": row.id,
        "action": row.action,
        "alias": row.alias,
        "from_version": row.from_version,
        "to_version": row.to_version,
        "actor": row.actor,
        "detail": row.detail,
        "at": row.created_at.isoformat(),
    }
