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
from argus.manifest import ModelPackage
from argus.tasks.image_input import ImageFields, OneImageModel


class EmbedFields(ImageFields):
    output: str | None = None
    """The output that holds the vector (default: the model's first)."""
    normalize: bool = True
    """Scale each vector to unit length (cosine similarity becomes a dot product)."""


class EmbedModel(OneImageModel):
    task = "embed"
    answer_kind = "embedding"
    item_fields = frozenset()  # a vector, not a list of items: graph ops do not read it
    fields = EmbedFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        fields = package.fields_as(EmbedFields)
        self.normalize = fields.normalize
        outputs = [o.name for o in self.ort.get_outputs()]
        self.output = fields.output or outputs[0]
        if self.output not in outputs:
            raise BadPackage(
                f"package {package.name}: output {self.output!r} is not one of the model's "
                f"outputs ({', '.join(outputs)})"
            )

    def infer(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        (vectors,) = self.run(prepared, [self.output])
        flat = np.asarray(vectors, dtype=np.float32).reshape(len(prepared), -1)
        if self.normalize:
            norms = np.linalg.norm(flat, axis=1, keepdims=True)
            flat = flat / np.maximum(norms, 1e-12)
        return list(flat)

    def finish(
        self, raw: np.ndarray, image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        return {"embedding": [round(float(x), 6) for x in raw]}
