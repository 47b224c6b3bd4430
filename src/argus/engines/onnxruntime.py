"""Inference sessions: ONNX Runtime by default, OpenVINO where chosen; created once per
loaded model version and shared. Both expose the same small surface (``run``,
``get_inputs``, ``get_outputs``) so tasks do not care which one runs them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from argus.engines.occupancy import OCCUPANCY
from argus.errors import ConfigError

log = logging.getLogger(__name__)
RUNTIMES = ("onnxruntime", "openvino")


def providers() -> list[str]:
    available = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if p in available]
    return [*chosen, "CPUExecutionProvider"]


@dataclass(frozen=True)
class RuntimeChoice:
    """Which engine runs a model: from the manifest's ``runtime`` block, overridden by settings."""

    engine: str = "onnxruntime"
    precision: str = "f32"  # OpenVINO: f32 or bf16 (bf16 only where the manifest checked it)
    lanes: int = 1  # calls that may run at once (OpenVINO compiles one stream per lane)
    lone_threads: int = 0  # threads for a call that runs alone in the server (0 = no change)

    @classmethod
    def resolve(cls, manifest_runtime: dict[str, Any], engine: str | None,
                precision: str | None) -> RuntimeChoice:
        chosen = engine or str(manifest_runtime.get("engine", "onnxruntime"))
        if chosen not in RUNTIMES:
            raise ConfigError(f"runtime {chosen!r} is not one of {', '.join(RUNTIMES)}")
        prec = precision or str(manifest_runtime.get("precision", "f32"))
        if prec not in ("f32", "bf16"):
            raise ConfigError(f"precision must be f32 or bf16, not {prec!r}")
        if prec == "bf16" and not manifest_runtime.get("bf16_checked"):
            log.warning("bf16 was asked for but the manifest does not say its accuracy was "
                        "checked (runtime.bf16_checked); using f32")
            prec = "f32"
        return cls(chosen, prec)


def make_session(path: Path, threads: int, choice: RuntimeChoice | None = None) -> Any:
    """A session for one ONNX file. When ``choice.lone_threads`` is more than ``threads``, two:
    one for calls under load and a wider one for a call that runs alone (see
    :mod:`argus.engines.occupancy`)."""
    choice = choice or RuntimeChoice()
    threads = max(1, threads)
    if choice.lone_threads > threads:
        return AdaptiveSession(
            _single_session(path, threads, choice, lone=False),
            _single_session(path, choice.lone_threads, choice, lone=True),
        )
    return _single_session(path, threads, choice, lone=False)


def _single_session(path: Path, threads: int, choice: RuntimeChoice, lone: bool) -> Any:
    if choice.engine == "openvino":
        return OpenVINOSession(path, threads, choice.precision, 1 if lone else choice.lanes)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads would take cores from calls on other lanes; a call that has its cores
    # to itself (a lone call, or the only lane) spins between operators (about 1.5 ms less per
    # image here) and stops the moment it returns, so whatever follows gets the cores back.
    spin = lone or choice.lanes == 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if spin:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(path), sess_options=options, providers=providers())


class AdaptiveSession:
    """Two sessions of one model: ``shared`` (this call's share of the cores) and ``lone``
    (every core), chosen per call by how many requests the server's models hold."""

    def __init__(self, shared: Any, lone: Any) -> None:
        self.shared = shared
        self.lone = lone
        self.lone_calls = 0

    def __getattr__(self, name: str) -> Any:  # inputs, outputs, model metadata: the shared one's
        return getattr(self.shared, name)

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> Any:
        if OCCUPANCY.now <= 1:  # this call's request is the only one in the server
            self.lone_calls += 1
            return self.lone.run(output_names, feeds)
        return self.shared.run(output_names, feeds)


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
