"""Inference engines: ONNX Runtime by default, OpenVINO where chosen. A session is created once
per loaded model version and shared; every engine's exposes the same small surface (``run``,
``get_inputs``, ``get_outputs``) so tasks do not care which one runs them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from argus.engines.occupancy import OCCUPANCY
from argus.engines.onnxruntime import ort_session
from argus.engines.openvino import OpenVINOSession
from argus.errors import ConfigError
from argus.manifest import RuntimeHints

log = logging.getLogger(__name__)
RUNTIMES = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class RuntimeChoice:
    """Which engine runs a model: from the manifest's ``runtime`` block, overridden by settings."""

    engine: str = "onnxruntime"
    precision: str = "f32"  # OpenVINO: f32 or bf16 (bf16 only where the manifest checked it)
    lanes: int = 1  # calls that may run at once (OpenVINO compiles one stream per lane)
    lone_threads: int = 0  # threads for a call that runs alone in the server (0 = no change)

    @classmethod
    def resolve(cls, hints: RuntimeHints, engine: str | None,
                precision: str | None) -> RuntimeChoice:
        chosen = engine or hints.engine or "onnxruntime"
        if chosen not in RUNTIMES:
            raise ConfigError(f"runtime {chosen!r} is not one of {', '.join(RUNTIMES)}")
        prec = precision or hints.precision or "f32"
        if prec not in ("f32", "bf16"):
            raise ConfigError(f"precision must be f32 or bf16, not {prec!r}")
        if prec == "bf16" and not hints.bf16_checked:
            log.warning("bf16 was asked for but the manifest does not say its accuracy was "
                        "checked (runtime.bf16_checked); using f32")
            prec = "f32"
        return cls(chosen, prec)


def make_session(
    path: Path, threads: int, choice: RuntimeChoice | None = None, variable_shapes: bool = False
) -> Any:
    """A session for one ONNX file. When ``choice.lone_threads`` is more than ``threads``, two:
    one for calls under load and a wider one for a call that runs alone (see
    :mod:`argus.engines.occupancy`)."""
    choice = choice or RuntimeChoice()
    threads = max(1, threads)
    if choice.lone_threads > threads:
        return AdaptiveSession(
            _single_session(path, threads, choice, False, variable_shapes),
            _single_session(path, choice.lone_threads, choice, True, variable_shapes),
        )
    return _single_session(path, threads, choice, False, variable_shapes)


def _single_session(
    path: Path, threads: int, choice: RuntimeChoice, lone: bool, variable_shapes: bool
) -> Any:
    if choice.engine == "openvino":
        return OpenVINOSession(path, threads, choice.precision, 1 if lone else choice.lanes)
    return ort_session(path, threads, lone or choice.lanes == 1, variable_shapes)


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


__all__ = [
    "RUNTIMES",
    "AdaptiveSession",
    "OpenVINOSession",
    "RuntimeChoice",
    "make_session",
]
