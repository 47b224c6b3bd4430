"""What a question graph is: its steps (model calls or operations), how they depend on one
another and what the answer holds. :mod:`argus.graphs.parse` builds these from YAML::

    question: portrait
    steps:
      labels: {model: efficientnet-lite0, top_k: 5}
      faces:  {model: mtcnn}
      aligned: {op: align, from: faces, size: 112}
      mood: {model: face-mood, input: aligned, when: "faces.count > 0"}
    answer: [labels, faces, mood]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from argus.graphs.expr import Expression

QUESTION_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MODEL_REF = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9._-]{0,99}?)(?:@(?P<alias>[a-z0-9][a-z0-9._-]{0,99})"
    r"|:(?P<version>[0-9]{1,9}))?$"
)
MAX_STEPS = 32
OPS = ("align", "crop", "threshold", "top_k", "mesh_crop", "attention", "who")
# Ops that make crops for a later model step (``input:``).
CROP_OPS = ("align", "crop", "mesh_crop")
# The fields of a crop or align step's items (a model step's are its task's ``item_fields``).
CROP_FIELDS: frozenset[str] = frozenset()
STEP_KEYS = {
    "model": {"model", "input", "when", "top_k", "crops", "params"},
    "align": {"op", "from", "when", "size", "crops"},
    "crop": {"op", "from", "when", "size", "margin", "crops"},
    "threshold": {"op", "from", "when", "min_score"},
    "top_k": {"op", "from", "when", "k"},
    "mesh_crop": {"op", "from", "when", "size", "scale", "crops"},
    "attention": {"op", "from", "when", "faces", "people", "objects"},
    # Names each face of ``from`` by the nearest person of the request's gallery, reading the
    # embeddings a model step made of those faces' aligned crops (``vectors``).
    "who": {"op", "from", "when", "vectors"},
}
# Keys that name further steps an op reads (beyond ``from:``), and whether they take a list.
#: Keys naming further steps an op reads, and whether each takes a list of them.
STEP_REFS = {"faces": False, "people": False, "objects": True, "vectors": False}


@dataclass(frozen=True)
class ModelFacts:
    """What validation needs to know about a registered model."""

    task: str
    versions: frozenset[int] = frozenset()
    aliases: frozenset[str] = frozenset()


ModelLookup = Callable[[str], ModelFacts | None]


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME@alias`` or ``NAME:version``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass
class Step:
    name: str
    line: int
    model: ModelRef | None = None
    op: str | None = None
    source: str | None = None
    """``from:`` — the step an operation reads."""
    input: str | None = None
    """``input:`` — the step whose crops a model step runs on."""
    when: Expression | None = None
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Further steps an op reads, by key (``attention``: faces, people, objects; ``who``:
    vectors, the embedding step it matches, one vector per face)."""
    params: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    """Every step that must answer first (from, input and the steps ``when`` reads)."""
    kind: str | None = None
    """Its task's ``answer_kind`` (labels, faces, objects, …), crops or per_crop; None when
    unknown."""
    fields: frozenset[str] | None = None
    """Fields of this step's items (None when unknown)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line}
        if self.model is not None:
            out["model"] = str(self.model)
        if self.op is not None:
            out["op"] = self.op
        if self.source is not None:
            out["from"] = self.source
        if self.input is not None:
            out["input"] = self.input
        if self.when is not None:
            out["when"] = self.when.source
        for key, names in self.reads.items():
            out[key] = names[0] if not STEP_REFS[key] else list(names)
        if self.params:
            out["params"] = dict(self.params)
        out["needs"] = list(self.needs)
        return out


@dataclass
class GraphSpec:
    name: str
    description: str
    steps: dict[str, Step]
    """In an order where every step comes after the steps it needs."""
    answer: tuple[str, ...]
    single: bool
    """``answer: STEP`` — the answer is that step's result itself (single-model questions)."""
    origin: str
    text: str

    def models(self) -> list[str]:
        names: list[str] = []
        for step in self.steps.values():
            if step.model is not None and step.model.name not in names:
                names.append(step.model.name)
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.name,
            "description": self.description,
            "models": self.models(),
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
            "answer": self.answer[0] if self.single else list(self.answer),
            "origin": self.origin,
        }
