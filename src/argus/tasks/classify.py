"""Image classification: resize shorter side, centre crop, normalise, softmax, top-k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from argus.engines import RuntimeChoice
from argus.errors import BadInput
from argus.images import DecodedImage
from argus.manifest import ModelPackage, Preprocess
from argus.tasks.image_input import ImageFields, OneImageModel


def preprocess(rgb: np.ndarray, pre: Preprocess) -> np.ndarray:
    """HxWx3 uint8 RGB → 3xCxC (or CxCx3) float32, normalised."""
    h, w = rgb.shape[:2]
    scale = pre.resize_shorter / min(h, w)
    nw, nh = max(pre.crop, round(w * scale)), max(pre.crop, round(h * scale))
    if (nw, nh) != (w, h):
        # Resize only the region that survives the centre crop: the crop's footprint in the
        # source, rounded to whole pixels (under one source pixel of shift), area-averaged
        # when shrinking (antialiased like Pillow's, ~6x faster), bilinear when growing.
        side = pre.crop / scale
        left = max(0, round((w - side) / 2))
        top = max(0, round((h - side) / 2))
        region = rgb[top : top + max(1, round(side)), left : left + max(1, round(side))]
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        cropped = cv2.resize(region, (pre.crop, pre.crop), interpolation=interp)
    else:
        left, top = (nw - pre.crop) // 2, (nh - pre.crop) // 2
        cropped = rgb[top : top + pre.crop, left : left + pre.crop]
    if pre.color == "BGR":
        cropped = cropped[..., ::-1]
    if pre.layout == "NCHW":
        cropped = cropped.transpose(2, 0, 1)
    arr = np.array(cropped, dtype=np.float32, order="C")  # the one float copy, done in place
    mean, inv_std = _norm(pre)
    arr -= mean
    arr *= inv_std
    return arr


def _norm(pre: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 1/std as float32, shaped to broadcast over the layout (keeps the math in f32)."""
    shape = (3, 1, 1) if pre.layout == "NCHW" else (1, 1, 3)
    mean = np.asarray(pre.mean, dtype=np.float32).reshape(shape)
    inv_std = (1.0 / np.asarray(pre.std, dtype=np.float64)).astype(np.float32).reshape(shape)
    return mean, inv_std


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
    preprocess = staticmethod(preprocess)

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.activation = package.fields_as(ClassifyFields).postprocess.activation
        self.labels = package.labels

    def infer(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        logits = self.run(prepared)[0]
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
