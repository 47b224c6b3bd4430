"""int8 by ONNX Runtime's static quantization: QDQ format, per-channel int8 weights, uint8
activations whose ranges come from running the model on calibration inputs (MinMax).

``quant_pre_process`` (shape inference and graph optimisation) runs first, as ONNX Runtime
advises: quantizing the fused graph keeps fewer Quantize/Dequantize pairs. Then bias correction:
rounding a convolution's weights to int8 shifts its outputs' mean by the rounding error times
the input's mean, which the calibration inputs measure; subtracting that shift from the float
bias before quantizing cancels it.

The weights are not rounded to nearest but by ``rounding`` (each weight's error compensated by
the ones after it, GPTQ's idea), on ONNX Runtime's own grid, so ``quantize_static`` keeps them
as they are. EfficientNet-Lite0 on the 234 held-out views, weights alone int8 (fp32
activations): rounded to nearest 91.5% top-1 agreement with fp32, with bias correction 97.0%,
compensated and bias-corrected 97.9-98.3% (KL to fp32 0.0157, 0.0009). With int8 activations
too the KL is 0.0026: the activations' rounding is now the larger part of what is left.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from argus.errors import BadInput
from argus.optimize import rounding

log = logging.getLogger(__name__)
BATCH = 8
"""Calibration inputs per run. ONNX Runtime's MinMax calibration keeps only each run's
per-tensor minima and maxima (ReduceMin/ReduceMax outputs), so every run is kept and folded at
the end: its ``CalibMaxIntermediateOutputs`` would bound nothing, and in ONNX Runtime 1.32 it
discards every full set of runs instead of folding it (microsoft/onnxruntime#18893): with 8
inputs per run and 4 runs a set, photos beyond 32 calibrated on the last few only, and 32, 64,
... photos failed with "No data is collected"."""


def int8_rounded(w: np.ndarray) -> np.ndarray:
    """``w`` as ONNX Runtime's per-channel symmetric int8 keeps it: per output channel, scale
    max|w| / 127, values rounded half to even."""
    scale = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    scale = scale.reshape(-1, *([1] * (w.ndim - 1))).astype(np.float32)
    return (np.clip(np.rint(w / scale), -127, 127) * scale).astype(np.float32)


def correct_biases(src: Path, dest: Path, name: str, rows: list[np.ndarray],
                   kept: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Write ``src`` to ``dest`` with every convolution's bias corrected for the shift its int8
    weights will cause (their rounding error times the mean of its input over ``rows``).
    ``kept``: the weights int8 will keep, by name, written in their place (default: each rounded
    to nearest)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv" and n.input[1] in weights
             and (len(n.input) < 3 or n.input[2] in weights)]
    if not convs:
        for key, value in (kept or {}).items():
            weights[key].CopyFrom(numpy_helper.from_array(value, key))
        onnx.save(model, str(dest))
        return {"convolutions": 0}
    watched = list(dict.fromkeys(n.input[0] for n in convs))
    session = rounding.watching(model, watched)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for start in range(0, len(rows), BATCH):
        outs = session.run(watched, {name: np.stack(rows[start : start + BATCH])})
        for tensor, value in zip(watched, outs, strict=True):
            axes = (0, *range(2, value.ndim))
            sums[tensor] = sums.get(tensor, 0) + value.sum(axis=axes, dtype=np.float64)
            counts[tensor] = counts.get(tensor, 0) + value.size // value.shape[1]
    largest = 0.0
    for node in convs:
        w = numpy_helper.to_array(weights[node.input[1]])
        mean = sums[node.input[0]] / counts[node.input[0]]
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        q = kept[node.input[1]] if kept and node.input[1] in kept else int8_rounded(w)
        error = (q - w).reshape(w.shape[0], w.shape[1], -1).sum(axis=2)
        per_group = w.shape[1]
        out_per_group = w.shape[0] // groups
        shift = np.array([error[o] @ mean[(o // out_per_group) * per_group :
                                         (o // out_per_group + 1) * per_group]
                          for o in range(w.shape[0])], dtype=np.float64)
        if len(node.input) > 2:
            bias = numpy_helper.to_array(weights[node.input[2]]).astype(np.float64)
            weights[node.input[2]].CopyFrom(numpy_helper.from_array(
                (bias - shift).astype(np.float32), node.input[2]))
        else:
            bias_name = f"{node.input[1]}_bias_corrected"
            graph.initializer.append(numpy_helper.from_array((-shift).astype(np.float32),
                                                             bias_name))
            node.input.append(bias_name)
        largest = max(largest, float(np.abs(shift).max()))
    for key, value in (kept or {}).items():
        weights[key].CopyFrom(numpy_helper.from_array(value, key))
    onnx.save(model, str(dest))
    return {"convolutions": len(convs), "calibration_inputs": len(rows),
            "largest_shift": round(largest, 6)}


def method() -> dict[str, Any]:
    """What the lineage records of how the version was made."""
    import onnxruntime

    return {"to": "int8", "engine": "onnxruntime", "onnxruntime": onnxruntime.__version__,
            "format": "QDQ", "weights": "int8, per channel",
            "activations": "uint8 (Gemm outputs float)",
            "calibration": "MinMax", "pre_process": "quant_pre_process",
            "weight_rounding": "error-compensating (GPTQ-style, im2col input second moments, "
                               f"damping {rounding.DAMP}, "
                               f"{'largest inputs first' if rounding.ACT_ORDER else 'in order'})",
            "bias_correction": "conv biases less the int8 weights' expected shift"}


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


def calibration_rows(name: str, rows: list[np.ndarray]) -> Any:
    """ONNX Runtime's calibration reader over ``rows`` (one input row each), fed to the
    input ``name`` :data:`BATCH` rows at a time, from the start again on ``rewind``."""
    from onnxruntime.quantization import CalibrationDataReader

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

    return Rows()


def quantize_int8(src: Path, dest: Path, rows: list[np.ndarray], work: Path) -> dict[str, Any]:
    """Write the int8 version of the ONNX file ``src`` to ``dest``, calibrated on ``rows``
    (the model's input rows); what was done, for the lineage."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = input_name(src)
    done = method()
    prepared = work / "prepared.onnx"
    corrected = work / "corrected.onnx"
    with warnings.catch_warnings():
        # The quantizer warns about choices made above (QDQ on CPU, per-channel); not the user's.
        warnings.simplefilter("ignore")
        try:
            quant_pre_process(str(src), str(prepared))
        except Exception as exc:  # symbolic shape inference fails on some graphs; go without
            log.warning("quant_pre_process failed (%s); quantizing the graph as it is", exc)
            prepared, done["pre_process"] = src, f"skipped: {type(exc).__name__}"
        kept, rounded = rounding.round_weights(prepared, name, rows)
        done["weight_rounding"] = {"how": done["weight_rounding"], **rounded}
        done["bias_correction"] = correct_biases(prepared, corrected, name, rows, kept)
        try:
            quantize_static(
                str(corrected), str(dest), calibration_rows(name, rows),
                quant_format=QuantFormat.QDQ, per_channel=True,
                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                calibrate_method=CalibrationMethod.MinMax,
                # A classifier's logits as uint8 are 256 steps over their whole range:
                # near-tied classes swap on rounding alone (on EfficientNet-Lite0, 3 of the 6
                # held-out flips left). Float out of the last Gemm costs nothing measurable
                # (QGemm's float output).
                extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm"]},
            )
        except Exception as exc:
            raise BadInput(f"ONNX Runtime could not quantize this model: "
                           f"{type(exc).__name__}: {exc}") from exc
    return done
