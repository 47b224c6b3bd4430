"""Inputs a caller prepared itself: for tasks whose ``prepare`` output is exactly one row of
the model's single input tensor, a client holding the package (the gateway) may preprocess an
image and send the tensor instead of the file when that is fewer bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from argus.images import DecodedImage


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
