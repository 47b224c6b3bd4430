"""Embedding: an image (typically an aligned face crop) to a vector, L2-normalised, so that
cosine similarity is a dot product. Preprocessing is the classifier's (resize the shorter side,
centre crop, normalise); the vector is one output of the model, flattened."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from argus.engines import RuntimeChoice
from argus.errors import BadPackage
from argus.images import DecodedImage
from argus.manifest import ModelPackage, Preprocess, TaskFields
from argus.tasks.base import TaskModel
from argus.tasks.classify import preprocess
from argus.tasks.prepared import InputPreparer, image_preparer


class EmbedFields(TaskFields):
    preprocess: Preprocess = Preprocess()
    output: str | None = None
    """The output that holds the vector (default: the model's first)."""
    normalize: bool = True
    """Scale each vector to unit length (cosine similarity becomes a dot product)."""


class EmbedModel(TaskModel):
    task = "embed"
    answer_kind = "embedding"
    item_fields = frozenset()  # a vector, not a list of items: graph ops do not read it
    takes_prepared_input = True
    fields = EmbedFields

    @classmethod
    def input_preparer(cls, package: ModelPackage) -> InputPreparer | None:
        return image_preparer(package, package.fields_as(EmbedFields).preprocess, preprocess)

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        fields = package.fields_as(EmbedFields)
        self.pre = fields.preprocess
        self.normalize = fields.normalize
        self.ort = self.session(package.onnx_files()["model"])
        self.input_name = self.ort.get_inputs()[0].name
        outputs = [o.name for o in self.ort.get_outputs()]
        self.output = fields.output or outputs[0]
        if self.output not in outputs:
            raise BadPackage(
                f"package {package.name}: output {self.output!r} is not one of the model's "
                f"outputs ({', '.join(outputs)})"
            )

    @property
    def min_side(self) -> int | None:
        return self.pre.resize_shorter

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> np.ndarray:
        return preprocess(image.rgb, self.pre)

    def infer(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        batch = np.stack(prepared) if len(prepared) > 1 else prepared[0][None]
        (vectors,) = self.ort.run([self.output], {self.input_name: batch})
        flat = np.asarray(vectors, dtype=np.float32).reshape(len(prepared), -1)
        if self.normalize:
            norms = np.linalg.norm(flat, axis=1, keepdims=True)
            flat = flat / np.maximum(norms, 1e-12)
        return list(flat)

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.ort.run(None, inputs)
        names = [o.name for o in self.ort.get_outputs()]
        return dict(zip(names, outputs, strict=True))

    def finish(
        self, raw: np.ndarray, image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        return {"embedding": [round(float(x), 6) for x in raw]}
