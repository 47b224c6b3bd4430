"""ONNX Runtime sessions: the default engine (CUDA where present, else CPU)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def providers() -> list[str]:
    available = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if p in available]
    return [*chosen, "CPUExecutionProvider"]


def ort_session(
    path: Path, threads: int, spin: bool, variable_shapes: bool = False
) -> ort.InferenceSession:
    """A session running each call on ``threads`` threads, one operator at a time.

    Spinning threads would take cores from calls on other lanes; a call that has its cores to
    itself (a lone call, or the only lane: ``spin``) spins between operators (about 1.5 ms less
    per image here) and stops the moment it returns, so whatever follows gets the cores back.

    ``variable_shapes``: the input's size changes from call to call (MTCNN's P-Net on every
    level of every image's pyramid). The CPU arena would keep its largest growth forever
    and memory patterns are per shape, so both are off: buffers go back on each return.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if spin:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if variable_shapes:
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), sess_options=options, providers=providers())
