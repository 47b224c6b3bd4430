"""The transport-neutral core: questions in, answers out. REST, gRPC, the CLI, workers and
ingest all call ``Core.ask``; none of this module knows about FastAPI or grpcio, nor where the
models run: that is the :class:`~argus.runtime.runner.ModelRunner` it is built with
(:mod:`argus.server` builds each role).

Every question is a graph (:mod:`argus.graphs`): built-in ones ship as YAML in
``argus/questions``, the user's live in ``ARGUS_HOME/questions``, and every registered model is
also a one-step graph of its own name. All of them run through the same executor."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from argus.contracts import Answer, AskOptions, ImageFacts, Timings
from argus.db.engine import make_engine, migrate
from argus.errors import BadInput, BadPackage, NotFound, PackageRefused
from argus.galleries.matcher import Galleries, GalleryIndex
from argus.galleries.store import GalleryStore
from argus.graphs.cache import StepCache
from argus.graphs.catalogue import Catalogue
from argus.graphs.executor import GraphExecutor
from argus.graphs.parse import model_graph
from argus.graphs.spec import GraphSpec, ModelFacts, ModelRef
from argus.images import ImageSource, Limits, open_image, oriented_size
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.models.resolutions import Resolutions
from argus.models.versions import VersionInfo
from argus.records import RecordWriter, record_row
from argus.review import Keeper, ReviewStore
from argus.runtime.runner import ModelRunner
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
    def matches_gallery(self) -> bool:
        """The graph names faces from a gallery (a ``who`` step): asking needs ``gallery``."""
        return any(step.op == "who" for step in self.graph.steps.values())

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


class Core:
    """Owns the registry, the question catalogue, the step cache and the prediction-record
    writer; model steps go to ``runner``."""

    def __init__(
        self, settings: Settings, runner: ModelRunner, store: PackageStore | None = None
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.engine = make_engine(settings.db_url)
        migrate(self.engine)
        self.store = store or PackageStore(settings.packages_dir)
        self.registry = ModelRegistry(self.engine, self.store)
        self.resolutions = Resolutions(self.registry)
        self._changes_seen = 0
        self.limits = Limits(
            settings.max_image_bytes, settings.max_image_pixels, settings.question_pixels
        )
        self.cache = StepCache(settings.cache_entries, settings.cache_mb * 1024 * 1024)
        self.executor = GraphExecutor(runner, self.cache)
        self.records = RecordWriter(self.engine)
        self.review = ReviewStore(self.engine, settings.review_dir,
                                  settings.review_budget_mb * 1024 * 1024, settings.dataset_dir)
        self.keeper = Keeper(self.review, self.resolutions, self.answer_with)
        self.gallery_store = GalleryStore(self.engine)
        self.galleries = Galleries(self.gallery_store)
        self.catalogue = Catalogue(settings.questions_dir, self.model_facts)
        self._builtin = {
            name: Question(name, spec.description, spec, True, "builtin")
            for name, spec in self.catalogue.builtins.items()
        }
        self.ready = False
        self.refused: dict[str, dict[str, Any]] = {}
        """Package digest → the version refused at load (model, version, reason): its
        questions answer 503 with the reason until a new version is registered or a restart."""

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
        asked = self.resolutions.derived(("question", name), lambda: self._model_question(name))
        if asked is None:
            raise NotFound(
                f"no question named {name!r}; `argus questions list` (or GET /v1/questions) "
                "lists them"
            )
        return asked

    def _model_question(self, name: str) -> Question | None:
        """A registered model asked as a question of its own (None: no such model)."""
        if name not in self.registry.names():
            return None
        task = self.registry.show(name).task
        return Question(name, f"{task} with model {name}", model_graph(name, task), False, "model")

    def answers_raw_vectors(self, name: str) -> bool:
        """Whether question ``name`` answers embeddings themselves (an ``embed`` model step in
        its answer): a face's vector identifies a person, so only admin tokens may ask."""
        return self.resolutions.derived(("raw-vectors", name), lambda: self._raw_vectors(name))

    def _raw_vectors(self, name: str) -> bool:
        try:
            q = self.question(name)
        except NotFound:
            return False  # asking it answers 404 anyway
        for step_name in q.graph.answer:
            step = q.graph.steps[step_name]
            if step.model is not None:
                facts = self.model_facts(step.model.name)
                if facts is not None and facts.task == "embed":
                    return True
        return False

    def gallery_index(self, q: Question, options: AskOptions) -> GalleryIndex | None:
        """The gallery a question with a ``who`` step matches against, checked against the
        asking app (None for other questions). Reads the database when the gallery changed:
        call it off the event loop (:meth:`gallery_for`)."""
        if not q.matches_gallery:
            return None
        if options.gallery is None:
            raise BadInput(
                f"question {q.name!r} names faces from a gallery: say which (gallery=NAME; "
                "`argus gallery list` shows them)"
            )
        index = self.galleries.get(options.gallery)
        index.allow(options.app)
        return index

    async def gallery_for(self, q: Question, options: AskOptions) -> GalleryIndex | None:
        if not q.matches_gallery:
            return None
        return await asyncio.to_thread(self.gallery_index, q, options)

    def questions(self) -> list[dict[str, Any]]:
        models = set(self.registry.names())
        out = [q.to_dict(set(q.models) <= models) for q in self._builtin.values()]
        user = self.catalogue.user()
        for name in sorted(user):
            spec = user[name]
            q = Question(name, spec.description, spec, False, "user")
            out.append(q.to_dict(set(q.models) <= models))
        for name in sorted(models - set(self._builtin) - set(user)):
            own = self._model_question(name)
            if own is not None:
                out.append(own.to_dict(True))
        return out

    def model_refs(self) -> dict[str, list[tuple[str, int | None]]]:
        """Each graph question's model steps as (model, pinned version or None): what the
        registry must not remove from under them."""
        graphs = {**self.catalogue.builtins, **self.catalogue.user()}
        return {
            name: [(s.model.name, s.model.version) for s in g.steps.values() if s.model]
            for name, g in graphs.items()
        }

    # -- resolution (cached until the registry changes) -------------------------------

    def resolve(self, model: str, options: AskOptions, image_sha: str) -> VersionInfo:
        version, alias = options.target(model)
        try:
            return self.resolutions.resolve(
                model, version=version, alias=alias, app=options.app, route_key=image_sha
            )
        except NotFound as exc:
            if model not in self.registry.names() and any(
                model in q.models for q in self._builtin.values()
            ):
                raise NotFound(
                    f"model {model!r} is not installed; run `argus models pull`"
                ) from exc
            raise

    def _resolve_step(self, ref: ModelRef, options: AskOptions, image_sha: str) -> VersionInfo:
        if ref.version is None and ref.alias is None:
            version = self.resolve(ref.name, options, image_sha)
        else:
            # The graph pins this step: the request's version, alias and app do not apply.
            pinned = AskOptions(version=ref.version, alias=ref.alias)
            version = self.resolve(ref.name, pinned, image_sha)
        refused = self.refused.get(version.digest)
        if refused is not None:  # not re-hashed on every request: refused until it changes
            raise PackageRefused(refused["reason"])
        return version

    def _refuse(self, version: VersionInfo, exc: BadPackage) -> PackageRefused:
        reason = f"model {version.name} version {version.number} is refused: {exc.message}"
        if version.digest not in self.refused:
            log.error("%s", reason)
        self.refused[version.digest] = {
            "model": version.name, "version": version.number, "reason": reason
        }
        return PackageRefused(reason)

    async def load_or_refuse(self, version: VersionInfo) -> None:
        """Load ``version``; a package that fails its checks is refused (logged, listed by
        :meth:`refused_models`) and the others still load and serve."""
        try:
            await self.runner.load(version)
        except BadPackage as exc:
            self._refuse(version, exc)

    def refused_models(self) -> list[dict[str, Any]]:
        return list(self.refused.values())

    # -- answering ---------------------------------------------------------------------

    async def ask(
        self, question: str, data: bytes, options: AskOptions | None = None
    ) -> Answer:
        options = options or AskOptions()
        started = time.perf_counter()
        q = self.question(question)
        if self.resolutions.changes != self._changes_seen:
            await self._retire_removed()
        header = open_image(data, self.limits)  # cheap checks (size, format, pixels) first
        width, height = oriented_size(header)
        image_sha = hashlib.sha256(data).hexdigest()
        models = q.models
        if options.version is not None and len(models) > 1:
            raise BadInput(
                f"version={options.version} pins one model, but question {q.name!r} uses "
                f"{len(models)} ({', '.join(models)}); use alias= or app= instead"
            )
        gallery = await self.gallery_for(q, options)
        loading: list[VersionInfo] = []

        def resolve(ref: ModelRef) -> VersionInfo:
            loading.append(self._resolve_step(ref, options, image_sha))
            return loading[-1]

        source = ImageSource(data, image_sha, self.limits, header)  # its header read once
        try:
            result = await self.executor.run(q.graph, source, options.params(), resolve, gallery)
        except BadPackage as exc:  # loaded on demand and refused: a server-side fault
            held = {m.version.digest for m in self.runner.loaded()}
            unloaded = {v.digest: v for v in loading if v.digest not in held}
            if len(unloaded) != 1:  # which step's package it was is not known: not remembered
                raise PackageRefused(exc.message) from exc
            raise self._refuse(next(iter(unloaded.values())), exc) from exc
        finally:
            source.close()  # hands a large image's memory back
        answer = Answer(
            question=q.name,
            image=ImageFacts(sha256=image_sha, width=width, height=height),
            models=result.models(),
            answer=result.answer(),
            timings_ms=Timings(
                decode=round(result.decode_ms, 3),
                infer=round(result.infer_ms, 3),
                total=round((time.perf_counter() - started) * 1000, 3),
            ),
            steps=result.steps(),
            cached=result.cached,
        )
        if options.record:
            try:
                self.records.submit(record_row(answer, options.source, options.app, options.job_id))
            except Exception:  # a record must never fail the answer
                log.exception("could not queue the prediction record for %s", q.name)
        keep = options.keep_uncertain
        if keep is None:
            keep = self.settings.keep_uncertain
        if keep:  # None or 0: off
            self.keeper.consider(q.name, data, image_sha, header.format, result, keep,
                                 options.params(), options.source, options.app)
        return answer

    async def answer_with(
        self, version: VersionInfo, data: bytes, image_sha: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The answer of exactly ``version`` (its own one-step graph, through the step cache)
        on an image: how the review keeper asks a canary's other side."""
        source = ImageSource(data, image_sha, self.limits)
        try:
            result = await self.executor.run(
                model_graph(version.name, version.task), source, params, lambda _ref: version
            )
        finally:
            source.close()
        return result.answer()

    async def _retire_removed(self) -> None:
        """The registry moved: versions removed from it leave this process's memory too (the
        runner lets go of each once its queue is empty)."""
        self._changes_seen = self.resolutions.changes
        live = await asyncio.to_thread(self.registry.digests)
        self.runner.retire(live)

    async def preload(self) -> None:
        """Load the production version of every registered model, then report ready."""
        for name in await asyncio.to_thread(self.registry.names):
            try:
                version = await asyncio.to_thread(self.registry.resolve, name)
            except NotFound:
                continue
            await self.load_or_refuse(version)
        self.ready = True

    async def close(self) -> None:
        await self.keeper.close()
        await asyncio.to_thread(self.records.close)
        await self.runner.close()
        self.engine.dispose()

