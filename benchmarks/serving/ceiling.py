"""The in-process ceiling: what this machine does with no server at all, re-measured each run.

Every measurement runs in fresh spawned processes (no ORT state shared with the orchestrator),
which load the model, warm up, meet at a barrier and then loop for a fixed time:
- ``model``: ``session.run`` on one pre-made 1x3x224x224 input (model-only throughput);
- ``pipeline``: Pillow ``draft`` decode + preprocess + ``session.run`` over the JPEGs, as a
  server would do per request minus the serving.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from peers import pipeline

WARMUP_RUNS = 10


@dataclass(frozen=True)
class LoopResult:
    count: int
    elapsed_s: float
    latencies_ms: list[float]
    cpu_s: float  # the process's CPU time (every thread) over the loop


def _loop(
    kind: str,
    model_path: str,
    image_paths: list[str],
    threads: int,
    seconds: float,
    barrier: Barrier,
    results: Queue[LoopResult],
) -> None:
    session = pipeline.make_session(model_path, threads)
    images = [Path(p).read_bytes() for p in image_paths]
    fixed = pipeline.prepare(images[0])[None]

    def once(i: int) -> None:
        batch = pipeline.prepare(images[i % len(images)])[None] if kind == "pipeline" else fixed
        session.run(None, {pipeline.INPUT_NAME: batch})

    for i in range(WARMUP_RUNS):
        once(i)
    barrier.wait()
    latencies: list[float] = []
    cpu = time.process_time()
    start = time.perf_counter()
    until = start + seconds
    i = 0
    while True:
        t0 = time.perf_counter()
        once(i)
        t1 = time.perf_counter()
        latencies.append((t1 - t0) * 1000.0)
        i += 1
        if t1 >= until:
            break
    results.put(LoopResult(i, t1 - start, latencies, time.process_time() - cpu))


def measure(
    kind: str, model_path: Path, images: list[Path], processes: int, threads: int, seconds: float
) -> dict[str, Any]:
    """Images/s summed over ``processes`` loops of ``threads`` ORT threads each, and the p50."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results: Queue[LoopResult] = ctx.Queue()
    args = (kind, str(model_path), [str(p) for p in images], threads, seconds, barrier, results)
    procs = [ctx.Process(target=_loop, args=args, daemon=True) for _ in range(processes)]
    for proc in procs:
        proc.start()
    loops = [results.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = [ms for loop in loops for ms in loop.latencies_ms]
    return {
        "kind": kind,
        "processes": processes,
        "threads": threads,
        "images_per_s": round(sum(loop.count / loop.elapsed_s for loop in loops), 2),
        "p50_ms": round(statistics.median(latencies), 2),
        # CPU per image beside a server's (its process tree's CPU over the images it answered)
        "cpu_ms_per_image": round(
            1000 * sum(loop.cpu_s for loop in loops) / max(1, sum(loop.count for loop in loops)),
            2,
        ),
    }


@dataclass(frozen=True)
class Ceiling:
    pipeline_2x1: dict[str, Any]  # the ceiling every system is compared with
    pipeline_1x1: dict[str, Any]  # its p50 is the single-image latency to meet at concurrency 1
    pipeline_1x2: dict[str, Any]
    model_1x1: dict[str, Any]
    model_1x2: dict[str, Any]

    @property
    def images_per_s(self) -> float:
        return float(self.pipeline_2x1["images_per_s"])

    @property
    def cpu_ms_per_image(self) -> float | None:
        value = self.pipeline_2x1.get("cpu_ms_per_image")
        return float(value) if value is not None else None

    @property
    def single_p50_ms(self) -> float:
        return float(self.pipeline_1x1["p50_ms"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_ceiling(model_path: Path, images: list[Path], seconds: float) -> Ceiling:
    short = max(1.0, seconds / 2)
    return Ceiling(
        model_1x1=measure("model", model_path, images, 1, 1, short),
        model_1x2=measure("model", model_path, images, 1, 2, short),
        pipeline_1x1=measure("pipeline", model_path, images, 1, 1, short),
        pipeline_1x2=measure("pipeline", model_path, images, 1, 2, short),
        pipeline_2x1=measure("pipeline", model_path, images, 2, 1, seconds),
    )
