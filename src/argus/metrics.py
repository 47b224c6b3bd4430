"""Prometheus metrics: request counters and latencies recorded by the transports, and the state
of the model runner (loaded models, memory, queues, batches) read at scrape time.

Every server process owns one ``Metrics`` with its own registry, shared by its REST and gRPC
transports; ``/metrics`` renders it. Nothing here knows about HTTP or gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from argus.contracts import Answer
from argus.errors import DRAIN_CANCEL, ArgusError
from argus.runtime.runner import ModelRunner

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
T = TypeVar("T")


class UpstreamStatus(Protocol):
    """What the gateway's upstream pool reports about each upstream."""

    def status(self) -> list[dict[str, Any]]: ...


class ReviewEvents(Protocol):
    """What the review keeper counts (kept, dropped, failed, …)."""

    def events(self) -> Mapping[str, int]: ...


class ReviewCollector:
    """The review keeper's counts, read when Prometheus scrapes."""

    def __init__(self, keeper: ReviewEvents) -> None:
        self.keeper = keeper

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "argus_review_events",
            "Images considered for review by what became of them: kept, already (kept "
            "before), dropped (the review queue was full), failed, compared (a canary's other "
            "side asked).",
            labels=["event"],
        )
        for event, count in self.keeper.events().items():
            counter.add_metric([event], count)
        yield counter


def batch_buckets(by_size: Mapping[int, int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets of a batcher's batch sizes."""
    out: list[tuple[str, float]] = []
    for bound in (*BATCH_BUCKETS, float("inf")):
        count = sum(n for size, n in by_size.items() if size <= bound)
        out.append(("+Inf" if bound == float("inf") else str(bound), count))
    return out


class RunnerCollector:
    """Reads the model runner when Prometheus scrapes: no bookkeeping on the request path."""

    def __init__(
        self,
        runner: ModelRunner,
        ready: Callable[[], bool],
        upstreams: UpstreamStatus | None = None,
    ) -> None:
        self.runner = runner
        self.ready = ready
        self.upstreams = upstreams

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        runner = self.runner
        labels = ["model", "version"]
        loaded = GaugeMetricFamily(
            "argus_model_loaded", "Model versions loaded in this process (1 each).",
            labels=[*labels, "digest", "runtime"],
        )
        memory = GaugeMetricFamily(
            "argus_model_memory_bytes", "Resident memory taken by loading each model version.",
            labels=labels,
        )
        depth = GaugeMetricFamily(
            "argus_model_queue_depth", "Requests waiting in each model's batching queue.",
            labels=labels,
        )
        batches = HistogramMetricFamily(
            "argus_model_batch_size", "Requests per batch run by each model.", labels=labels
        )
        for entry in runner.loaded():
            key = [entry.version.name, str(entry.version.number)]
            loaded.add_metric([*key, entry.version.digest, entry.runtime], 1)
            memory.add_metric(key, entry.memory_bytes)
            depth.add_metric(key, entry.batcher.depth)
            stats = entry.batcher.stats
            batches.add_metric(key, batch_buckets(stats.by_size), sum_value=stats.items)
        yield from (loaded, memory, depth, batches)
        for event in ("loads", "unloads"):
            counter = CounterMetricFamily(
                f"argus_model_{event}", f"Model versions {event[:-1]}ed since start."
            )
            counter.add_metric([], runner.events.get(event, 0))
            yield counter
        yield GaugeMetricFamily(
            "argus_ready", "1 when every model this process serves is loaded.",
            value=1 if self.ready() else 0,
        )
        if self.upstreams is not None:
            up = GaugeMetricFamily(
                "argus_upstream_up", "1 when the gateway's last call to an upstream reached it.",
                labels=["model", "address"],
            )
            for item in self.upstreams.status():
                up.add_metric([item["model"], item["address"]], 1 if item["up"] else 0)
            yield up


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "argus_requests",
            "Answered requests by question, model, version and status; a request that used "
            "several models counts once per model, a failed one once with empty model labels.",
            ["transport", "question", "model", "version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "argus_request_duration_seconds",
            "Time from request to answer, by question and status.",
            ["transport", "question", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.infer_latency = Histogram(
            "argus_model_infer_seconds",
            "Inference time (batch queue + model run) per model version.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch(
        self,
        runner: ModelRunner,
        ready: Callable[[], bool],
        upstreams: UpstreamStatus | None = None,
    ) -> None:
        """Report the state of ``runner`` (and the gateway's upstreams) on every scrape."""
        self.registry.register(RunnerCollector(runner, ready, upstreams))

    def watch_review(self, keeper: ReviewEvents) -> None:
        """Report what the review keeper did on every scrape."""
        self.registry.register(ReviewCollector(keeper))

    def observe(
        self,
        transport: str,
        question: str,
        models: Iterable[tuple[str, str]],
        status: int,
        seconds: float,
    ) -> None:
        used = list(models) or [("", "")]
        for model, version in used:
            self.requests.labels(transport, question, model, version, str(status)).inc()
        self.latency.labels(transport, question, str(status)).observe(seconds)

    async def track(
        self,
        transport: str,
        question: str,
        call: Awaitable[T],
        models: Callable[[T], list[tuple[str, str]]],
    ) -> T:
        """Await ``call`` and record it, whether it answers or fails; ``models`` names the
        (model, version) pairs that answered."""
        started = time.perf_counter()
        try:
            result = await call
        except ArgusError as exc:
            self.observe(transport, question, (), exc.status, time.perf_counter() - started)
            raise
        except asyncio.CancelledError as exc:  # drained at shutdown (503) or the caller left
            status = 503 if DRAIN_CANCEL in exc.args else 499
            self.observe(transport, question, (), status, time.perf_counter() - started)
            raise
        except BaseException:
            self.observe(transport, question, (), 500, time.perf_counter() - started)
            raise
        self.observe(transport, question, models(result), 200, time.perf_counter() - started)
        return result

    async def track_ask(self, transport: str, question: str, call: Awaitable[Answer]) -> Answer:
        """Await a ``Core.ask`` and record it (and its inference time)."""
        answer = await self.track(transport, question, call, Answer.model_pairs)
        models = answer.model_pairs()
        if len(models) == 1:
            self.infer_latency.labels(*models[0]).observe(answer.timings_ms.infer / 1000)
        return answer

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
