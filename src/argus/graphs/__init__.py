"""Question graphs: YAML specs, the ``when:`` language, operations, the step cache and the
executor that runs independent steps concurrently and skips gated ones."""

from __future__ import annotations

from argus.graphs.cache import StepCache
from argus.graphs.executor import GraphExecutor, GraphResult, StepRun
from argus.graphs.parse import model_graph, parse_graph
from argus.graphs.spec import GraphSpec, ModelFacts, ModelRef, Step

__all__ = [
    "GraphExecutor",
    "GraphResult",
    "GraphSpec",
    "ModelFacts",
    "ModelRef",
    "Step",
    "StepCache",
    "StepRun",
    "model_graph",
    "parse_graph",
]
