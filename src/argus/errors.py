"""One exception root that carries its status; each transport maps it once."""

from __future__ import annotations

DRAIN_CANCEL = "argus: the server is shutting down"
"""The message a request's task is cancelled with when the server's grace is over (it is
answered 503, and counted so)."""


class ArgusError(Exception):
    """Base of every error a user may see. ``status`` is the HTTP status it maps to."""

    status: int = 500
    grpc_code: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": self.message}


class BadInput(ArgusError):
    """The request itself is wrong (not an image, truncated, bad parameter)."""

    status = 400
    grpc_code = "INVALID_ARGUMENT"


class UnsupportedMedia(BadInput):
    """The bytes are not an image format Argus reads."""

    status = 415


class TooLarge(BadInput):
    """Over the byte or pixel limit."""

    status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class NotFound(ArgusError):
    """Unknown question, model, version, alias, app or job."""

    status = 404
    grpc_code = "NOT_FOUND"


class Conflict(ArgusError):
    """The request contradicts the current state (pinned version removed, alias moved meanwhile)."""

    status = 409
    grpc_code = "FAILED_PRECONDITION"


class Unauthorized(ArgusError):
    status = 401
    grpc_code = "UNAUTHENTICATED"


class Forbidden(ArgusError):
    status = 403
    grpc_code = "PERMISSION_DENIED"


class Overloaded(ArgusError):
    """A queue is full; retry later."""

    status = 503
    grpc_code = "UNAVAILABLE"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientClosed(ArgusError):
    """The client went away before its request was read whole: not a fault of either side's
    making worth a traceback; counted apart (499, as nginx names it) and never answered."""

    status = 499
    grpc_code = "CANCELLED"


class Unavailable(ArgusError):
    """A model or upstream is not there (not loaded yet, service down)."""

    status = 503
    grpc_code = "UNAVAILABLE"


class PackageRefused(Unavailable):
    """The version asked for was refused at load (its package failed its checks): 503 for a
    client, since the server serves its other models; a setup fault for a pipeline."""


class BadPackage(ArgusError):
    """A model package is malformed or was tampered with."""

    status = 422
    grpc_code = "FAILED_PRECONDITION"


class ConfigError(ArgusError):
    """Settings that cannot work; raised at start-up with a sentence a person understands."""

    status = 500
