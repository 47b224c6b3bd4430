"""Timing calls in-process for the per-model benchmarks: medians in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def medians_ms(
    calls: dict[str, Callable[[], object]], runs: int, warmup: int = 3
) -> dict[str, float]:
    """The median time of each call, taking turns (one of each per round), so that whatever
    else the machine is doing weighs on all of them alike and their ratios hold."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def median_ms(call: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """The median time of one call."""
    return medians_ms({"call": call}, runs, warmup)["call"]
