"""The two contracts every transport shares: what a caller may ask with (:class:`AskOptions`)
and what it gets back (:class:`Answer`).

Options are parsed once, at the edge, from whatever the transport carries: strings (an HTTP
query or form, CLI flags, KServe parameters), a job row, protobuf fields. A bad value is refused
with a sentence that names it. The answer is built once by the core; transports only call
``to_json()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from argus.errors import BadInput

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
MAX_TOP_K = 1000
MAX_VERSION = 2**31 - 1
SOURCES = ("http", "grpc", "cli", "job", "ingest")
#: The options a job row keeps (who asked and how it is recorded are the job's own).
STORED = ("top_k", "app", "version", "alias", "crops", "conf", "keep_uncertain", "gallery")


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise BadInput(f"{name} must be true or false, not {value!r}")


def parse_int(name: str, value: Any, low: int, high: int) -> int | None:
    """A whole number in [low, high] from a string or number; None for empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise BadInput(f"{name} must be a whole number, not {value!r}")
    try:
        number = int(value) if not isinstance(value, str) else int(value.strip(), 10)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise BadInput(f"{name} must be between {low} and {high}, not {number}")
    return number


def parse_fraction(name: str, value: Any) -> float | None:
    """A number in [0, 1]; None for empty."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        raise BadInput(f"{name} must be between 0 and 1, not {number}")
    return number


def parse_top_k(value: Any) -> int | None:
    return parse_int("top_k", value, 1, MAX_TOP_K)


def _text(name: str, value: Any, limit: int = 200) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) > limit:
        raise BadInput(f"{name} is {len(text)} characters long; at most {limit}")
    return text


def _pins(given: Mapping[str, Any]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for model, target in given.items():
        text = _text(f"the pin of {model}", target)
        if text is None:
            continue
        if text.isdigit():
            parse_int(f"the pinned version of {model}", text, 0, MAX_VERSION)
        pins[str(model)] = text
    return pins


GALLERY_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _gallery(value: Any) -> str | None:
    text = _text("gallery", value, 100)
    if text is not None and not GALLERY_NAME.match(text):
        raise BadInput(
            f"gallery must be a gallery name (a-z, 0-9, '.', '_', '-'), not {text!r}"
        )
    return text


class Contract(BaseModel):
    """A wire contract: its attribute docstrings are its schema's descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class AskOptions(Contract):
    """What a caller may say besides the image. Build it with :meth:`parse` (from strings or
    stored values), which checks every field; the constructor trusts its caller."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    top_k: int | None = None
    """How many labels a classifying step answers (its default when None)."""
    conf: float | None = None
    """Score threshold of detecting steps (their default when None); a text step's lowest
    line score kept."""
    crops: bool = False
    """Aligned face crops (base64 PNG) in face answers."""
    app: str | None = None
    """The application asking: its pinned versions answer, and records name it."""
    version: int | None = None
    """An exact version of the question's one model."""
    alias: str | None = None
    """An alias of the question's models (e.g. canary)."""
    pins: dict[str, str] = Field(default_factory=dict)
    """Model name → a version number or an alias, for the models of the question named here
    (the others answer as ``app`` says, else with ``production``)."""
    record: bool = False
    """Write a prediction record of the answer."""
    keep_uncertain: float | None = None
    """Keep the image for review when a classifying step's top score is below this, or when a
    running canary and production disagree on it (0 to 1; 0 = not for this request), instead
    of the server's ``ARGUS_KEEP_UNCERTAIN``."""
    gallery: str | None = None
    """The gallery a ``who`` question names faces from (the app asking must be allowed it)."""
    source: str = "http"
    """Where the question came from, for prediction records: http, grpc, cli, job, ingest."""
    job_id: str | None = None

    @classmethod
    def parse(cls, fields: Mapping[str, Any], **fixed: Any) -> AskOptions:
        """Options from ``fields`` (strings as a query, form or flags carry them, or values
        as a job row keeps them); ``fixed`` are set by the transport itself (``source``,
        ``record``, ``job_id``, an ``app`` from a header) and win. Unknown keys are ignored;
        ``source`` and ``job_id`` come only from ``fixed``."""
        given = {k: v for k, v in fields.items() if k not in ("source", "job_id")}
        values = {**given, **{k: v for k, v in fixed.items() if v is not None}}
        return cls(
            top_k=parse_top_k(values.get("top_k")),
            conf=parse_fraction("conf", values.get("conf")),
            crops=parse_bool("crops", values.get("crops", False)),
            app=_text("app", values.get("app")),
            version=parse_int("version", values.get("version"), 0, MAX_VERSION),
            alias=_text("alias", values.get("alias")),
            pins=_pins(values.get("pins") or {}),
            record=parse_bool("record", values.get("record", False)),
            keep_uncertain=parse_fraction("keep_uncertain", values.get("keep_uncertain")),
            gallery=_gallery(values.get("gallery")),
            source=str(values.get("source", "http")),
            job_id=_text("job_id", values.get("job_id"), 40),
        )

    def target(self, model: str) -> tuple[int | None, str | None]:
        """The (version, alias) this request asks of ``model``."""
        pin = self.pins.get(model)
        if pin is not None:
            return (int(pin), None) if pin.isdigit() else (None, pin)
        if self.pins:  # pins name the models they pin; the others take their default
            return None, None
        return self.version, self.alias

    def params(self) -> dict[str, Any]:
        """The task parameters: what changes a model step's answer."""
        out: dict[str, Any] = {}
        if self.top_k is not None:
            out["top_k"] = self.top_k
        if self.conf is not None:
            out["conf"] = self.conf
        if self.crops:
            out["crops"] = True
        return out

    def query(self) -> dict[str, str]:
        """The options as an HTTP query says them (the app goes in a header of its own)."""
        out = {k: str(v) for k in ("top_k", "conf", "version", "alias", "keep_uncertain",
                                   "gallery")
               if (v := getattr(self, k)) is not None}
        if self.crops:
            out["crops"] = "true"
        if self.record:
            out["record"] = "true"
        return out

    def stored(self) -> dict[str, Any]:
        """What a job row keeps (``parse`` reads it back)."""
        return {k: v for k in STORED if (v := getattr(self, k)) not in (None, False)}


class ImageFacts(Contract):
    sha256: str
    width: int
    height: int


class ModelUsed(Contract):
    """The exact model version a step used."""

    name: str
    version: int
    digest: str


class Timings(Contract):
    decode: float
    """Milliseconds decoding the image (every size the steps needed)."""
    infer: float
    """Milliseconds waiting for and running the models."""
    total: float


class StepReport(Contract):
    """How one step of the question's graph went; times in ms since the request started."""

    ms: float
    cached: bool
    skipped: str | None = None
    """Why the step did not run (its ``when:`` was false, or a step it needs was skipped)."""
    start_ms: float | None = None
    end_ms: float | None = None
    model: ModelUsed | None = None


class Answer(Contract):
    """The answer to a question about one image, the same over every transport."""

    question: str
    image: ImageFacts
    models: list[ModelUsed]
    answer: dict[str, Any] = Field(
        description="The task's answer (labels, faces, objects…) for a one-model question; "
        "for a graph, one such object per answer step, by step name (null when skipped)."
    )
    timings_ms: Timings
    steps: dict[str, StepReport]
    cached: bool
    """Every step that ran came from the step cache."""

    def to_json(self) -> dict[str, Any]:
        out = self.model_dump()
        for step in out["steps"].values():
            if step["model"] is None:  # skipped steps and ops name no model
                del step["model"]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        return cls.model_validate(data)

    def model_pairs(self) -> list[tuple[str, str]]:
        """(name, version) of every model used, as metrics label them."""
        return [(m.name, str(m.version)) for m in self.models]


__all__ = ["SOURCES", "Answer", "AskOptions", "ImageFacts", "ModelUsed", "StepReport", "Timings",
           "parse_bool", "parse_fraction", "parse_int", "parse_top_k"]
