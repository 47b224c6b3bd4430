"""The contract every task implements: prepare (per image), infer (per batch), finish; and what
a task declares about itself, which the rest of Argus asks instead of keeping task names."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from argus.engines import RuntimeChoice, make_session
from argus.images import DecodedImage, DecodeSize
from argus.manifest import ModelPackage, TaskFields


@dataclass(frozen=True)
class InputPreparer:
    """How a client holding a package makes one row of its model's single input itself."""

    input_name: str
    row_shape: tuple[int, ...]
    """One row of the input tensor (float32)."""
    min_side: int | None
    """The shorter side to decode the image at (None: full size)."""
    prepare: Callable[[DecodedImage], np.ndarray]

    @property
    def tensor_bytes(self) -> int:
        return 4 * int(np.prod(self.row_shape))


class TaskModel(ABC):
    """One loaded model version. ``prepare`` and ``finish`` run on the decode thread pool,
    ``infer`` on batches in the model's batcher. Nothing here knows about HTTP or gRPC.

    A task is one subclass in its own module, listed in :data:`argus.tasks.TASKS`; its class
    attributes say what the rest of Argus needs to know about it.
    """

    task: str = ""
    """The name manifests give (``task: classify``)."""
    answer_kind: ClassVar[str] = ""
    """The key of the answer's list of items (``labels``, ``objects``, ``faces``); also the step
    name of the model's one-step question."""
    item_fields: ClassVar[frozenset[str]] = frozenset()
    """The fields every item of that list has (graph conditions may read them)."""
    answer_extras: ClassVar[tuple[str, ...]] = ()
    """Keys the answer has after its list, in order (text: the lines' text joined)."""
    takes_prepared_input: ClassVar[bool] = False
    """``prepare`` gives exactly one row of the model's single input tensor, so a client that
    prepared an image itself (the gateway) may send that row instead of the image."""
    fields: ClassVar[type[TaskFields]] = TaskFields
    """The manifest keys this task reads beyond the common ones, validated at package load."""

    @classmethod
    def input_preparer(cls, package: ModelPackage) -> InputPreparer | None:
        """How a caller holding ``package`` prepares an input itself, for tasks that
        ``takes_prepared_input`` (None: it may not)."""
        return None

    @classmethod
    def to_source(cls, result: dict[str, Any], matrix: np.ndarray) -> dict[str, Any]:
        """``result``, answered on a crop, in the pixels of the image the crop was cut from;
        ``matrix`` (2x3) maps crop pixels to image pixels. Default: unchanged (answers without
        positions, such as an embedding)."""
        return result

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        self.package = package
        self.threads = threads
        self.choice = choice or RuntimeChoice.resolve(package.runtime, None, None)

    def session(self, path: Path, variable_shapes: bool = False) -> Any:
        """An inference session for one of the package's ONNX files, on the chosen runtime
        (``variable_shapes``: its input size changes per call; see ``ort_session``)."""
        return make_session(path, self.threads, self.choice, variable_shapes)

    @property
    def min_side(self) -> int | None:
        """Smallest shorter side the decoder may reduce a JPEG to (None = full size)."""
        return None

    @property
    def decode_size(self) -> DecodeSize:
        """What the decoder must keep of the image for this model: the size ``prepare``
        reads (a JPEG is decoded at the smallest DCT scale that keeps it)."""
        return DecodeSize(min_side=self.min_side)

    @property
    def max_batch_size(self) -> int:
        return self.package.runtime.max_batch_size

    @property
    def max_wait_ms(self) -> float:
        return self.package.runtime.max_wait_ms

    @abstractmethod
    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> Any:
        """Per-image preprocessing (may raise BadInput)."""

    @abstractmethod
    def infer(self, prepared: Sequence[Any]) -> list[Any]:
        """Run the model on a batch of prepared inputs; one raw result per input."""

    @abstractmethod
    def finish(self, raw: Any, image: DecodedImage, params: dict[str, Any]) -> dict[str, Any]:
        """Decode a raw result into the answer's ``answer`` object:
        ``{answer_kind: [item, …]}``, every item with at least ``item_fields``."""

    def metadata(self) -> dict[str, Any]:
        """Input/output tensors for the KServe v2 model metadata."""
        manifest = self.package.manifest
        return {
            "inputs": [spec.model_dump() for spec in manifest.inputs],
            "outputs": [spec.model_dump() for spec in manifest.outputs],
        }

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run on the model's own (already preprocessed) input tensors; raw outputs by name."""
        raise NotImplementedError(f"{self.task} models take encoded images only")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions (default: let the garbage collector do it)."""
