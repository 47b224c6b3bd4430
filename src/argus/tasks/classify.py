"""Image classification: resize shorter side, centre crop, normalise, softmax, top-k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from argus.engines import RuntimeChoice
from argus.errors import BadInput
from argus.images import DecodedImage
from argus.manifest import ModelPackage
from argus.tasks.image_input import ImageFields, OneImageModel


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Postprocess(BaseModel):
    """The ``postprocess`` block: what turns the model's outputs into scores."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    activation: str = "softmax"
    """softmax makes logits probabilities; any other value takes the outputs as scores."""


class ClassifyFields(ImageFields):
    postprocess: Postprocess = Postprocess()


class ClassifyModel(OneImageModel):
    task = "classify"
    answer_kind = "labels"
    item_fields = frozenset({"label", "score", "index"})
    fields = ClassifyFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.activation = package.fields_as(ClassifyFields).postprocess.activation
        self.labels = package.labels
        # The scores are the first output; others (a trained model's ``features``) are not
        # computed for an answer unless they lie on the way to it.
        self.scores_output = self.ort.get_outputs()[0].name

    def infer(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        logits = self.run(prepared, [self.scores_output])[0]
        probs = softmax(logits) if self.activation == "softmax" else logits
        return list(probs)

    def finish(
        self, raw: np.ndarray, image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        top_k = int(params.get("top_k") or 5)
        if top_k < 1:
            raise BadInput(f"top_k must be at least 1, not {top_k}")
        top_k = min(top_k, raw.shape[-1])
        idx = np.argpartition(-raw, top_k - 1)[:top_k]
        idx = idx[np.argsort(-raw[idx], kind="stable")]
        return {
            "labels": [
                {
                    "label": self.labels[i] if i < len(self.labels) else str(i),
                    "index": int(i),
                    "score": round(float(raw[i]), 6),
                }
                for i in idx
            ]
        }
