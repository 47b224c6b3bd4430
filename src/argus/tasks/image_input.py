"""Models with one image input, preprocessed like a classifier's (resize the shorter side,
centre crop, normalise): ``prepare`` gives exactly one row of the model's single input tensor.
So a client holding the package (the gateway) may preprocess an image itself and send the
tensor instead of the file when that is fewer bytes (``InputPreparer``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from argus.engines import RuntimeChoice
from argus.images import DecodedImage
from argus.manifest import ModelPackage, Preprocess, TaskFields
from argus.tasks.base import InputPreparer, TaskModel


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


def image_preparer(package: ModelPackage, pre: Preprocess) -> InputPreparer | None:
    """The preparer of a one-input model whose row is ``preprocess(rgb, pre)``; None when the
    model takes more than one input."""
    inputs = package.manifest.inputs
    if len(inputs) != 1:
        return None
    row = (3, pre.crop, pre.crop) if pre.layout == "NCHW" else (pre.crop, pre.crop, 3)
    return InputPreparer(
        inputs[0].name, row, pre.resize_shorter, lambda img: preprocess(img.rgb, pre)
    )


class ImageFields(TaskFields):
    preprocess: Preprocess = Preprocess()


class OneImageModel(TaskModel):
    """The part classify and embed share: one session, one preprocessed image input, the
    model's own tensors for KServe callers. Subclasses turn the outputs into answers."""

    takes_prepared_input = True
    fields = ImageFields

    @classmethod
    def input_preparer(cls, package: ModelPackage) -> InputPreparer | None:
        pre = package.fields_as(ImageFields).preprocess
        return image_preparer(package, pre)

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.pre = package.fields_as(ImageFields).preprocess
        self.ort = self.session(package.onnx_files()["model"])
        self.input_name = self.ort.get_inputs()[0].name

    @property
    def min_side(self) -> int | None:
        return self.pre.resize_shorter

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> np.ndarray:
        return preprocess(image.rgb, self.pre)

    def run(self, prepared: Sequence[np.ndarray], outputs: list[str] | None = None) -> Any:
        """The session on a batch of prepared rows."""
        batch = np.stack(prepared) if len(prepared) > 1 else prepared[0][None]
        return self.ort.run(outputs, {self.input_name: batch})

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.ort.run(None, inputs)
        names = [o.name for o in self.ort.get_outputs()]
        return dict(zip(names, outputs, strict=True))
