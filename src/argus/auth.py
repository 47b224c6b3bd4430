"""Bearer tokens and what they allow, for every transport.

``ARGUS_ADMIN_TOKENS`` and ``ARGUS_INFER_TOKENS`` hold comma-separated tokens, or ``@path`` to a
file with one token per line. The rules:

* management calls (changing models, aliases, apps, administering jobs) need an admin token as
  soon as any token is configured: configuring only inference tokens must not leave management
  open; so do records and images kept for review (``/v1/review``), which are every client's;
* inference calls need an inference or an admin token when inference tokens are configured,
  and are open otherwise;
* health and metrics are always open (probes and scrapers carry no tokens), and so are the web
  page's files (``/``, ``/ui/…``: a browser loads them before it can send a token) and
  ``/v1/whoami`` (what the presented token may do, so the page shows only what it can use).

No token, or one that is not configured, is ``Unauthorized`` (401 / UNAUTHENTICATED); a valid
token of the wrong scope is ``Forbidden`` (403 / PERMISSION_DENIED). Tokens are compared in
constant time against every configured token, and never appear in a message or a log line.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argus.errors import ConfigError, Forbidden, Unauthorized
from argus.settings import Settings

TokenKind = Literal["admin", "infer", "unknown", "none"]


class Scope(enum.Enum):
    OPEN = "open"
    INFER = "infer"
    ADMIN = "admin"


def parse_tokens(value: str, setting: str) -> tuple[bytes, ...]:
    """Tokens from a setting: ``a,b,c`` or ``@/path/to/file`` (one per line, ``#`` comments)."""
    value = value.strip()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{setting} names the token file {str(path)!r}, which cannot be read: "
                f"{exc.strerror or exc}"
            ) from None
        items = [line.split("#", 1)[0] for line in text.splitlines()]
    else:
        items = value.split(",")
    tokens = tuple(item.strip().encode("utf-8") for item in items if item.strip())
    if value and not tokens:
        raise ConfigError(f"{setting} is set but holds no token")
    return tokens


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization`` header or gRPC ``authorization`` metadata value."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return value.strip()


def _matches(token: bytes, candidates: tuple[bytes, ...]) -> bool:
    # Compare with every candidate, never stopping early: the time taken does not depend on
    # which (or whether any) token matched.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(token, candidate)
    return found


@dataclass(frozen=True)
class Tokens:
    admin: tuple[bytes, ...] = ()
    infer: tuple[bytes, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        return cls(
            admin=parse_tokens(settings.admin_tokens, "ARGUS_ADMIN_TOKENS"),
            infer=parse_tokens(settings.infer_tokens, "ARGUS_INFER_TOKENS"),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.admin or self.infer)

    def required(self, scope: Scope) -> bool:
        if scope is Scope.ADMIN:
            return self.enabled
        if scope is Scope.INFER:
            return bool(self.infer)
        return False

    def check(self, scope: Scope, presented: str | None) -> None:
        """Raise Unauthorized/Forbidden unless ``presented`` may make a call of ``scope``."""
        if not self.required(scope):
            return
        kind = "an admin" if scope is Scope.ADMIN else "an inference or admin"
        if not presented:
            raise Unauthorized(f"this call needs {kind} token (Authorization: Bearer <token>)")
        token = presented.encode("utf-8")
        is_admin = _matches(token, self.admin)
        is_infer = _matches(token, self.infer)
        if scope is Scope.ADMIN:
            if is_admin:
                return
            if is_infer:
                raise Forbidden("this call needs an admin token; an inference token was given")
        elif is_admin or is_infer:
            return
        raise Unauthorized(f"the token is not valid; this call needs {kind} token")

    def kind(self, presented: str | None) -> TokenKind:
        """What ``presented`` is: ``admin``, ``infer``, ``unknown`` (not configured here) or
        ``none`` (no token)."""
        if not presented:
            return "none"
        token = presented.encode("utf-8")
        if _matches(token, self.admin):
            return "admin"
        if _matches(token, self.infer):
            return "infer"
        return "unknown"

    def allows(self, scope: Scope, presented: str | None) -> bool:
        """Whether ``presented`` may make a call of ``scope``."""
        try:
            self.check(scope, presented)
        except (Unauthorized, Forbidden):
            return False
        return True

    def client_token(self) -> str | None:
        """The token this process presents to its own upstreams (the gateway to model services,
        which read the same secret): an inference token if there is one, else an admin one."""
        for token in (*self.infer, *self.admin):
            return token.decode("utf-8")
        return None


_OPEN_PREFIXES = ("/v2/health/", "/metrics", "/docs", "/redoc", "/openapi.json", "/ui/")
_OPEN_PATHS = frozenset({"/", "/v1/whoami"})
_ADMIN_PREFIXES = ("/v1/models", "/v1/apps", "/v1/admin")
#: The people of a gallery and every change to it are personal data: admin only, reads too.
_GALLERIES = "/v1/galleries"
_READ = frozenset({"GET", "HEAD", "OPTIONS"})


def http_scope(method: str, path: str) -> Scope:
    """The scope a REST call needs, from its method and path. OPTIONS is open: it answers
    only which methods a path takes, which the open OpenAPI document says already."""
    method = method.upper()
    if path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES) or method == "OPTIONS":
        return Scope.OPEN
    if path == "/v1/records" or path.startswith("/v1/records/"):
        return Scope.ADMIN  # records list every client's answers
    if path == "/v1/train":
        return Scope.ADMIN  # training makes new model versions
    if path == _GALLERIES or path.startswith(_GALLERIES + "/"):
        return Scope.ADMIN
    if path == "/v1/review" or path.startswith("/v1/review/"):
        return Scope.ADMIN  # kept images are every client's images
    if path.startswith(_ADMIN_PREFIXES):
        return Scope.INFER if method in _READ else Scope.ADMIN
    if path == "/v1/jobs" or path.startswith("/v1/jobs/"):
        return _job_scope(method, path)
    return Scope.INFER


def _job_scope(method: str, path: str) -> Scope:
    """Submitting a job, and reading or cancelling one by id, is inference. Listing every job
    and changing anything deeper under /v1/jobs (requeueing dead letters, ...) is administration."""
    parts = [p for p in path.split("/") if p][2:]  # after "v1", "jobs"
    if not parts:
        return Scope.INFER if method == "POST" else Scope.ADMIN
    if len(parts) == 1 or method in _READ:
        return Scope.INFER
    return Scope.ADMIN


#: gRPC methods anyone may call (health); every other RPC is inference.
GRPC_OPEN_METHODS = frozenset(
    {
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
    }
)


def grpc_scope(method: str) -> Scope:
    return Scope.OPEN if method in GRPC_OPEN_METHODS else Scope.INFER
