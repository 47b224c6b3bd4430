"""The contract every task implements: prepare (per image), infer (per batch), finish."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from argus.engines import RuntimeChoice, make_session
from argus.images import DecodedImage
from argus.packages import ModelPackage


class TaskModel(ABC):
    """One loaded model version. ``prepare`` and ``finish`` run on the decode thread pool,
    ``infer`` on batches in the model's batcher. Nothing here knows about HTTP or gRPC."""

    task: str = ""

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        self.package = package
        self.threads = threads
        self.choice = choice or RuntimeChoice.resolve(package.runtime, None, None)

    def session(self, path: Path) -> Any:
        """An inference session for one of the package's ONNX files, on the chosen runtime."""
        return make_session(path, self.threads, self.choice)

    @property
    def min_side(self) -> int | None:
        """Smallest shorter side the decoder may reduce a JPEG to (None = full size)."""
        return None

    @property
    def max_batch_size(self) -> int:
        return int(self.package.runtime.get("max_batch_size", 8))

    @property
    def max_wait_ms(self) -> float:
        return float(self.package.runtime.get("max_wait_ms", 2.0))

    @abstractmethod
    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> Any:
        """Per-image preprocessing (may raise BadInput)."""

    @abstractmethod
    def infer(self, prepared: Sequence[Any]) -> list[Any]:
        """Run the model on a batch of prepared inputs; one raw result per input."""

    @abstractmethod
    def finish(self, raw: Any, image: DecodedImage, params: dict[str, Any]) -> dict[str, Any]:
        """Decode a raw result into the answer's ``answer`` object."""

    def metadata(self) -> dict[str, Any]:
        """Input/output tensors for the KServe v2 model metadata."""
        return {
            "inputs": list(self.package.manifest.get("inputs") or []),
            "outputs": list(self.package.manifest.get("outputs") or []),
        }

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run on the model's own (already preprocessed) input tensors; raw outputs by name."""
        raise NotImplementedError(f"{self.task} models take encoded images only")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions (default: let the garbage collector do it)."""
