"""Prometheus metrics: request counters and latencies recorded by the transports, and the state
of the model host (loaded models, memory, queues, batches) read at scrape time.

Every server process owns one ``Metrics`` with its own registry, shared by its REST and gRPC
transports; ``/metrics`` renders it. Nothing here knows about HTTP or gRPC.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from argus.errors import ArgusError
from argus.runtime.batching import Batcher
from argus.runtime.host import ModelHost

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
T = TypeVar("T")


def answer_models(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(m.get("name", "")), str(m.get("version", ""))) for m in answer.get("models", [])]


class UpstreamStatus(Protocol):
    """What the gateway's upstream pool reports about each upstream."""

    def status(self) -> list[dict[str, Any]]: ...


class _BatchSizes:
    """Batch-size histogram of one batcher, fed by its ``on_batch`` hook."""

    def __init__(self, sizes: Iterable[int]) -> None:
        self.counts = [0] * (len(BATCH_BUCKETS) + 1)
        self.total = 0
        self.items = 0
        for size in sizes:
            self.add(size)

    def add(self, size: int) -> None:
        index = next((i for i, b in enumerate(BATCH_BUCKETS) if size <= b), len(BATCH_BUCKETS))
        self.counts[index] += 1
        self.total += 1
        self.items += size

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*BATCH_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else str(bound), running))
        return out


class HostCollector:
    """Reads a model host when Prometheus scrapes: no bookkeeping on the request path."""

    def __init__(
        self,
        host: Callable[[], ModelHost],
        ready: Callable[[], bool],
        upstreams: UpstreamStatus | None = None,
    ) -> None:
        self.host = host
        self.ready = ready
        self.upstreams = upstreams
        self._sizes: weakref.WeakKeyDictionary[Batcher[Any, Any], _BatchSizes] = (
            weakref.WeakKeyDictionary()
        )

    def _batch_sizes(self, batcher: Batcher[Any, Any]) -> _BatchSizes:
        sizes = self._sizes.get(batcher)
        if sizes is None:
            # Batches before the first scrape are in the batcher's own stats; later ones
            # arrive through the hook (scrapes and batches both run on the event loop).
            sizes = _BatchSizes(batcher.stats.sizes)
            previous = batcher.on_batch

            def hook(size: int, sizes: _BatchSizes = sizes) -> None:
                sizes.add(size)
                if previous is not None:
                    previous(size)

            batcher.on_batch = hook
            self._sizes[batcher] = sizes
        return sizes

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        host = self.host()
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
        for entry in host.loaded():
            key = [entry.version.name, str(entry.version.number)]
            loaded.add_metric([*key, entry.version.digest, entry.runtime], 1)
            memory.add_metric(key, entry.memory_bytes)
            depth.add_metric(key, entry.batcher.depth)
            sizes = self._batch_sizes(entry.batcher)
            batches.add_metric(key, sizes.buckets(), sum_value=sizes.items)
        yield from (loaded, memory, depth, batches)
        for event in ("loads", "unloads"):
            counter = CounterMetricFamily(
                f"argus_model_{event}", f"Model versions {event[:-1]}ed since start."
            )
            counter.add_metric([], host.events.get(event, 0))
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
        host: Callable[[], ModelHost],
        ready: Callable[[], bool],
        upstreams: UpstreamStatus | None = None,
    ) -> None:
        """Report the state of ``host()`` (and the gateway's upstreams) on every scrape."""
        self.registry.register(HostCollector(host, ready, upstreams))

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
        except BaseException:
            self.observe(transport, question, (), 500, time.perf_counter() - started)
            raise
        self.observe(transport, question, models(result), 200, time.perf_counter() - started)
        return result

    async def track_ask(
        self, transport: str, question: str, call: Awaitable[dict[str, Any]]
    ) -> dict[str, Any]:
        """Await a ``Vision.ask`` and record it (and its inference time)."""
        answer = await self.track(transport, question, call, answer_models)
        infer_ms = (answer.get("timings_ms") or {}).get("infer")
        models = answer_models(answer)
        if isinstance(infer_ms, int | float) and len(models) == 1:
            self.infer_latency.labels(*models[0]).observe(infer_ms / 1000)
        return answer

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
