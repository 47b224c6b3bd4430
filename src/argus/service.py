"""The transport-neutral core: questions in, answers out. REST, gRPC, the CLI, workers and
ingest all call ``Vision.ask``; none of this module knows about FastAPI or grpcio.

Every question is a graph (:mod:`argus.graphs`): built-in ones ship as YAML in
``argus/questions``, the user's live in ``ARGUS_HOME/questions``, and every registered model is
also a one-step graph of its own name. All of them run through the same executor."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from argus.db.engine import make_engine, migrate
from argus.errors import BadInput, NotFound
from argus.graphs.cache import StepCache
from argus.graphs.catalogue import Catalogue
from argus.graphs.executor import GraphRunner, ImageSource
from argus.graphs.parse import model_graph
from argus.graphs.spec import GraphSpec, ModelFacts, ModelRef
from argus.images import Limits, open_image, oriented_size
from argus.packages import PackageStore
from argus.records import RecordWriter, record_row
from argus.registry import ModelRegistry, VersionInfo, canary_bucket
from argus.runtime.host import ModelHost
from argus.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    """A public name a client asks; it resolves to a graph (one step for a single model)."""

    name: str
    description: str
    graph: GraphSpec
    builtin: bool = False
    kind: str = "builtin"
    """builtin, user (a graph in ARGUS_HOME/questions) or model (a model's own question)."""

    @property
    def models(self) -> list[str]:
        return self.graph.models()

    @property
    def model(self) -> str:
        """The first model the graph uses (the only one for single-model questions)."""
        models = self.models
        return models[0] if models else ""

    def to_dict(self, available: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "models": self.models,
            "builtin": self.builtin,
            "available": available,
            "kind": self.kind,
            "steps": list(self.graph.steps),
        }


@dataclass
class AskOptions:
    """What a caller may say besides the image."""

    top_k: int | None = None
    app: str | None = None
    version: int | None = None
    alias: str | None = None
    crops: bool = False
    record: bool = False
    source: str = "http"
    """Where the question came from, for prediction records: http, grpc, cli, job, ingest."""
    job_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.top_k is not None:
            out["top_k"] = self.top_k
        if self.crops:
            out["crops"] = True
        return out


class Vision:
    """Owns the registry, the model host, the question catalogue, the step cache and the
    prediction-record writer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.db_url)
        migrate(self.engine)
        self.store = PackageStore(settings.packages_dir)
        self.registry = ModelRegistry(self.engine, self.store)
        self.limits = Limits(settings.max_image_bytes, settings.max_image_pixels)
        self.host = ModelHost(
            self.store,
            threads=settings.threads_per_session(),
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            memory_budget_mb=settings.model_memory_mb,
            runtime=settings.runtime,
            precision=settings.precision,
            lanes=settings.lane_count(),
            lone_threads=settings.lone_thread_count(),
        )
        self.cache = StepCache(
            int(getattr(settings, "cache_entries", 4096)),
            int(getattr(settings, "cache_mb", 256)) * 1024 * 1024,
        )
        self.runner = GraphRunner(self.host, self.cache)
        self.records = RecordWriter(self.engine)
        self.catalogue = Catalogue(settings.questions_dir, self.model_facts)
        self._builtin = {
            name: Question(name, spec.description, spec, True, "builtin")
            for name, spec in self.catalogue.builtins.items()
        }
        self.ready = False
        self._resolved: OrderedDict[tuple[Any, ...], VersionInfo] = OrderedDict()
        self._model_questions: dict[str, Question] = {}
        self._generation = -1
        self._generation_checked = 0.0

    # -- catalogue ---------------------------------------------------------------------

    def model_facts(self, name: str) -> ModelFacts | None:
        """What graph validation needs to know of a registered model (None if unknown)."""
        try:
            info = self.registry.show(name)
        except NotFound:
            return None
        return ModelFacts(
            task=info.task,
            versions=frozenset(v.number for v in info.versions),
            aliases=frozenset(info.aliases),
        )

    def question(self, name: str) -> Question:
        builtin = self._builtin.get(name)
        if builtin is not None:
            return builtin
        spec = self.catalogue.user().get(name)
        if spec is not None:
            return Question(name, spec.description, spec, False, "user")
        self.refresh()
        known = self._model_questions.get(name)
        if known is not None:
            return known
        if name in self.registry.names():
            task = self.registry.show(name).task
            q = Question(name, f"{task} with model {name}", model_graph(name, task), False, "model")
            self._model_questions[name] = q
            return q
        raise NotFound(f"no question named {name!r}; GET /v1/questions lists them")

    def questions(self) -> list[dict[str, Any]]:
        models = set(self.registry.names())
        out = [q.to_dict(set(q.models) <= models) for q in self._builtin.values()]
        user = self.catalogue.user()
        for name in sorted(user):
            spec = user[name]
            q = Question(name, spec.description, spec, False, "user")
            out.append(q.to_dict(set(q.models) <= models))
        for name in sorted(models - set(self._builtin) - set(user)):
            task = self.registry.show(name).task
            q = Question(name, f"{task} with model {name}", model_graph(name, task), False, "model")
            out.append(q.to_dict(True))
        return out

    # -- resolution (cached until the registry changes) -------------------------------

    def refresh(self, force: bool = False) -> bool:
        """Drop cached resolutions if the registry moved; returns True when it did."""
        now = time.monotonic()
        if not force and now - self._generation_checked < 0.25:
            return False
        self._generation_checked = now
        generation = self.registry.generation()
        if generation != self._generation:
            self._generation = generation
            self._resolved.clear()
            self._model_questions.clear()
            return True
        return False

    def resolve(self, model: str, options: AskOptions, image_sha: str) -> VersionInfo:
        self.refresh()
        # The canary share depends on the image only through its bucket: cache by bucket.
        key = (model, options.version, options.alias, options.app, canary_bucket(image_sha))
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        try:
            version = self.registry.resolve(
                model,
                version=options.version,
                alias=options.alias,
                app=options.app,
                route_key=image_sha,
            )
        except NotFound as exc:
            if model not in self.registry.names() and any(
                model in q.models for q in self._builtin.values()
            ):
                raise NotFound(
                    f"model {model!r} is not installed; run `argus models pull`"
                ) from exc
            raise
        self._resolved[key] = version
        if len(self._resolved) > 4096:
            self._resolved.popitem(last=False)
        return version

    def _resolve_step(self, ref: ModelRef, options: AskOptions, image_sha: str) -> VersionInfo:
        if ref.version is None and ref.alias is None:
            return self.resolve(ref.name, options, image_sha)
        # The graph pins this step: the request's version, alias and app do not apply to it.
        return self.resolve(ref.name, AskOptions(version=ref.version, alias=ref.alias), image_sha)

    # -- answering ---------------------------------------------------------------------

    async def ask(
        self, question: str, data: bytes, options: AskOptions | None = None
    ) -> dict[str, Any]:
        options = options or AskOptions()
        started = time.perf_counter()
        q = self.question(question)
        header = open_image(data, self.limits)  # cheap checks (size, format, pixels) first
        width, height = oriented_size(header)
        image_sha = hashlib.sha256(data).hexdigest()
        models = q.models
        if options.version is not None and len(models) > 1:
            raise BadInput(
                f"version={options.version} pins one model, but question {q.name!r} uses "
                f"{len(models)} ({', '.join(models)}); use alias= or app= instead"
            )
        result = await self.runner.run(
            q.graph,
            ImageSource(data, image_sha, self.limits),
            options.params(),
            lambda ref: self._resolve_step(ref, options, image_sha),
        )
        answer = {
            "question": q.name,
            "image": {"sha256": image_sha, "width": width, "height": height},
            "models": result.models(),
            "answer": result.answer(),
            "timings_ms": {
                "decode": round(result.decode_ms, 3),
                "infer": round(result.infer_ms, 3),
                "total": round((time.perf_counter() - started) * 1000, 3),
            },
            "steps": result.steps(),
            "cached": result.cached,
        }
        if options.record:
            try:
                self.records.submit(record_row(answer, options.source, options.app, options.job_id))
            except Exception:  # a record must never fail the answer
                log.exception("could not queue the prediction record for %s", q.name)
        return answer

    async def preload(self) -> None:
        """Load the production version of every registered model, then report ready."""
        for name in self.registry.names():
            try:
                version = self.registry.resolve(name)
            except NotFound:
                continue
            await self.host.get(version)
        self.ready = True

    async def close(self) -> None:
        await asyncio.to_thread(self.records.close)
        await self.host.close()
        self.engine.dispose()


def parse_top_k(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        top_k = int(value)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"top_k must be a whole number, not {value!r}") from exc
    if top_k < 1 or top_k > 1000:
        raise BadInput(f"top_k must be between 1 and 1000, not {top_k}")
    return top_k
