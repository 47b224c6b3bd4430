"""OpenVINO behind ONNX Runtime's session surface (``run``, ``get_inputs``, ``get_outputs``);
needs the ``argus-vision[openvino]`` extra."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from argus.errors import ConfigError


@dataclass(frozen=True)
class _Arg:
    name: str
    shape: list[Any]
    type: str


def _shape(port: Any) -> list[int | None]:
    """ONNX Runtime style: ints for static dimensions, None for dynamic ones."""
    return [None if d.is_dynamic else d.get_length() for d in port.get_partial_shape()]


class OpenVINOSession:
    """An OpenVINO compiled model behind ONNX Runtime's ``run`` surface."""

    def __init__(self, path: Path, threads: int, precision: str = "f32", lanes: int = 1) -> None:
        try:
            import openvino as ov
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "the openvino runtime needs the extra: pip install 'argus-vision[openvino]'"
            ) from exc
        core = ov.Core()
        model = core.read_model(str(path))
        lanes = max(1, lanes)
        config: dict[str, Any] = {
            # Threads in all; each stream serves one call at a time with threads / streams.
            "INFERENCE_NUM_THREADS": max(1, threads) * lanes,
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            **({"PERFORMANCE_HINT": "LATENCY"} if lanes == 1 else
               {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": lanes}),
            # Several worker processes must not all pin themselves to the same cores.
            "ENABLE_CPU_PINNING": False,
        }
        self._compiled = core.compile_model(model, "CPU", config)
        self._inputs = [_Arg(p.get_any_name(), _shape(p), "tensor(float)")
                        for p in self._compiled.inputs]
        self._outputs = [_Arg(p.get_any_name(), _shape(p), "tensor(float)")
                         for p in self._compiled.outputs]
        self._local = threading.local()

    def get_inputs(self) -> list[_Arg]:
        return self._inputs

    def get_outputs(self) -> list[_Arg]:
        return self._outputs

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        # One infer request per thread: sessions are shared between inference lanes.
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer(feeds)
        names = list(output_names) if output_names else [o.name for o in self._outputs]
        by_name = {port.get_any_name(): np.asarray(value) for port, value in result.items()}
        return [by_name[n] for n in names]
