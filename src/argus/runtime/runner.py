"""What the core needs of whatever runs its models: the one protocol between the graph
executor (and the KServe data plane) and the models.

Two implementations, chosen when a role is built (:mod:`argus.server`), never by subclassing:

* :class:`argus.runtime.host.ModelHost` runs models in this process (sessions, batchers,
  inference lanes): all-in-one, model services, workers, the CLI;
* :class:`argus.gateway.runner.RemoteRunner` sends each model step to a model service over
  KServe v2 gRPC: the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from argus.images import DecodedImage, ImageSource
from argus.models.versions import VersionInfo
from argus.runtime.batching import Batcher


@dataclass
class ModelAnswer:
    """One model's answer on one image: the task's ``result`` (the JSON object an answer holds
    for the step), the ``raw`` model output it was decoded from (in process only; None when a
    model service answered) and the time spent waiting for and running the model."""

    result: dict[str, Any]
    raw: Any = None
    infer_ms: float = 0.0


class LoadedModel(Protocol):
    """A model version loaded in this process, as metrics report it."""

    version: VersionInfo
    runtime: str
    """Engine and precision, e.g. onnxruntime-f32, openvino-bf16."""
    memory_bytes: int
    batcher: Batcher[Any, Any]


class ModelRunner(Protocol):
    async def answer(
        self, version: VersionInfo, image: ImageSource, params: dict[str, Any]
    ) -> ModelAnswer:
        """Run ``version`` on the request's image (decoded, where needed, as the model asks)."""
        ...

    async def answer_crops(
        self, version: VersionInfo, crops: Sequence[DecodedImage], params: dict[str, Any]
    ) -> list[ModelAnswer]:
        """Run ``version`` on crops an earlier graph step made, as one batch where it can."""
        ...

    async def load(self, version: VersionInfo) -> None:
        """Make ``version`` ready to answer (in process: load its sessions)."""
        ...

    def retire(self, live: set[str]) -> None:
        """Let go of loaded versions whose package digest is not in ``live`` (removed from
        the registry)."""
        ...

    def loaded(self) -> Sequence[LoadedModel]:
        """Model versions held in this process (none when models run elsewhere)."""
        ...

    @property
    def events(self) -> dict[str, int]:
        """Counts of ``loads`` and ``unloads`` since start."""
        ...

    async def close(self) -> None: ...
