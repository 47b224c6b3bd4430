"""int8 by ONNX Runtime's static quantization: QDQ format, per-channel int8 weights, uint8
activations whose ranges come from running the model on calibration inputs (MinMax).

``quant_pre_process`` (shape inference and graph optimisation) runs first, as ONNX Runtime
advises: quantizing the fused graph keeps fewer Quantize/Dequantize pairs.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from argus.errors import BadInput

log = logging.getLogger(__name__)
BATCH = 8
"""Calibration inputs per run; ranges are folded every few runs, so memory stays bounded."""
FOLD_EVERY = 4


def method() -> dict[str, Any]:
    """What the lineage records of how the version was made."""
    import onnxruntime

    return {"to": "int8", "engine": "onnxruntime", "onnxruntime": onnxruntime.__version__,
            "format": "QDQ", "weights": "int8, per channel", "activations": "uint8",
            "calibration": "MinMax", "pre_process": "quant_pre_process"}


def input_name(path: Path) -> str:
    """The ONNX file's one image input (the graph inputs that are not weights)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    names = [i.name for i in graph.input if i.name not in weights]
    if len(names) != 1:
        raise BadInput(f"the model takes {len(names)} inputs; only one-input models are "
                       "calibrated")
    return names[0]


def quantize_int8(src: Path, dest: Path, rows: list[np.ndarray], work: Path) -> dict[str, Any]:
    """Write the int8 version of the ONNX file ``src`` to ``dest``, calibrated on ``rows``
    (the model's input rows); what was done, for the lineage."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Rows(CalibrationDataReader):
        def __init__(self) -> None:
            self.start = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.start >= len(rows):
                return None
            batch = np.stack(rows[self.start : self.start + BATCH])
            self.start += BATCH
            return {name: batch}

        def rewind(self) -> None:
            self.start = 0

    name = input_name(src)
    done = method()
    prepared = work / "prepared.onnx"
    with warnings.catch_warnings():
        # The quantizer warns about choices made above (QDQ on CPU, per-channel); not the user's.
        warnings.simplefilter("ignore")
        try:
            quant_pre_process(str(src), str(prepared))
        except Exception as exc:  # symbolic shape inference fails on some graphs; go without
            log.warning("quant_pre_process failed (%s); quantizing the graph as it is", exc)
            prepared, done["pre_process"] = src, f"skipped: {type(exc).__name__}"
        try:
            quantize_static(
                str(prepared), str(dest), Rows(),
                quant_format=QuantFormat.QDQ, per_channel=True,
                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"CalibMaxIntermediateOutputs": FOLD_EVERY},
            )
        except Exception as exc:
            raise BadInput(f"ONNX Runtime could not quantize this model: "
                           f"{type(exc).__name__}: {exc}") from exc
    return done
