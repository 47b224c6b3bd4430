"""Models with one image input, preprocessed like a classifier's (resize the shorter side,
centre crop, normalise): ``prepare`` gives exactly one row of the model's single input tensor.
So a client holding the package (the gateway) may preprocess an image itself and send the
tensor instead of the file when that is fewer bytes (``InputPreparer``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from argus.engines import RuntimeChoice
from argus.images import DecodedImage
from argus.manifest import ModelPackage, Preprocess, TaskFields
from argus.tasks.base import InputPreparer, TaskModel


def image_preparer(
    package: ModelPackage, pre: Preprocess, make: Callable[[np.ndarray, Preprocess], np.ndarray]
) -> InputPreparer | None:
    """The preparer of a one-input model whose row is ``make(rgb, pre)`` (resize, centre crop,
    normalise: classify and embed); None when the model takes more than one input."""
    inputs = package.manifest.inputs
    if len(inputs) != 1:
        return None
    row = (3, pre.crop, pre.crop) if pre.layout == "NCHW" else (pre.crop, pre.crop, 3)
    return InputPreparer(inputs[0].name, row, pre.resize_shorter, lambda img: make(img.rgb, pre))


class ImageFields(TaskFields):
    preprocess: Preprocess = Preprocess()


class OneImageModel(TaskModel):
    """The part classify and embed share: one session, one preprocessed image input, the
    model's own tensors for KServe callers. Subclasses turn the outputs into answers."""

    takes_prepared_input = True
    fields = ImageFields

    @staticmethod
    def preprocess(rgb: np.ndarray, pre: Preprocess) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def input_preparer(cls, package: ModelPackage) -> InputPreparer | None:
        pre = package.fields_as(ImageFields).preprocess
        return image_preparer(package, pre, cls.preprocess)

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
        return self.preprocess(image.rgb, self.pre)

    def run(self, prepared: Sequence[np.ndarray], outputs: list[str] | None = None) -> Any:
        """The session on a batch of prepared rows."""
        batch = np.stack(prepared) if len(prepared) > 1 else prepared[0][None]
        return self.ort.run(outputs, {self.input_name: batch})

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.ort.run(None, inputs)
        names = [o.name for o in self.ort.get_outputs()]
        return dict(zip(names, outputs, strict=True))
