"""Inputs a caller prepared itself: for tasks whose ``prepare`` output is exactly one row of
the model's single input tensor, a client holding the package (the gateway) may preprocess an
image and send the tensor instead of the file when that is fewer bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from argus.images import DecodedImage
from argus.manifest import ModelPackage, Preprocess


@dataclass(frozen=True)
class InputPreparer:
    input_name: str
    row_shape: tuple[int, ...]
    """One row of the input tensor (float32)."""
    min_side: int | None
    """The shorter side to decode the image at (None: full size)."""
    prepare: Callable[[DecodedImage], np.ndarray]

    @property
    def tensor_bytes(self) -> int:
        return 4 * int(np.prod(self.row_shape))


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
