"""The transport-neutral core: questions in, answers out. REST, gRPC, the CLI, workers and
ingest all call ``Vision.ask``; none of this module knows about FastAPI or grpcio."""

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
from argus.images import DecodedImage, Limits, decode, open_image
from argus.packages import PackageStore
from argus.registry import ModelRegistry, VersionInfo
from argus.runtime.host import ModelHost
from argus.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    """A public name a client asks. Single-model questions have one model step."""

    name: str
    description: str
    model: str
    builtin: bool = False

    def to_dict(self, available: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "models": [self.model],
            "builtin": self.builtin,
            "available": available,
        }


BUILTIN_QUESTIONS = {
    "labels": Question("labels", "Top ImageNet labels of the image", "efficientnet-lite0", True),
    "faces": Question("faces", "Faces with boxes and five landmarks", "mtcnn", True),
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
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.top_k is not None:
            out["top_k"] = self.top_k
        if self.crops:
            out["crops"] = True
        return out


class Vision:
    """Owns the registry, the model host and the question catalogue."""

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
        )
        self.ready = False
        self._resolved: OrderedDict[tuple[Any, ...], VersionInfo] = OrderedDict()
        self._generation = -1
        self._generation_checked = 0.0

    # -- catalogue ---------------------------------------------------------------------

    def question(self, name: str) -> Question:
        if name in BUILTIN_QUESTIONS:
            return BUILTIN_QUESTIONS[name]
        if name in self.registry.names():
            info = self.registry.show(name)
            return Question(name, f"{info.task} with model {name}", name)
        raise NotFound(f"no question named {name!r}; GET /v1/questions lists them")

    def questions(self) -> list[dict[str, Any]]:
        models = set(self.registry.names())
        out = [q.to_dict(q.model in models) for q in BUILTIN_QUESTIONS.values()]
        for name in sorted(models - set(BUILTIN_QUESTIONS)):
            task = self.registry.show(name).task
            out.append(Question(name, f"{task} with model {name}", name).to_dict(True))
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
            return True
        return False

    def resolve(self, model: str, options: AskOptions, image_sha: str) -> VersionInfo:
        self.refresh()
        bucket = int(hashlib.sha256(image_sha.encode()).hexdigest()[:8], 16) % 100
        key = (model, options.version, options.alias, options.app, bucket)
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
                q.model == model for q in BUILTIN_QUESTIONS.values()
            ):
                raise NotFound(
                    f"model {model!r} is not installed; run `argus models pull`"
                ) from exc
            raise
        self._resolved[key] = version
        if len(self._resolved) > 4096:
            self._resolved.popitem(last=False)
        return version

    # -- answering ---------------------------------------------------------------------

    async def ask(
        self, question: str, data: bytes, options: AskOptions | None = None
    ) -> dict[str, Any]:
        options = options or AskOptions()
        started = time.perf_counter()
        q = self.question(question)
        open_image(data, self.limits)  # cheap checks (size, format, pixels) before anything
        image_sha = hashlib.sha256(data).hexdigest()
        version = self.resolve(q.model, options, image_sha)
        entry = await self.host.get(version)
        params = options.params()
        model = entry.model

        def _decode_and_prepare() -> tuple[DecodedImage, Any, float]:
            t0 = time.perf_counter()
            image = decode(data, self.limits, model.min_side)
            prepared = model.prepare(image, params)
            return image, prepared, (time.perf_counter() - t0) * 1000

        image, prepared, decode_ms = await asyncio.to_thread(_decode_and_prepare)
        answer, infer_ms = await self.host.run(version, image, params, prepared)
        return {
            "question": q.name,
            "image": image.info(),
            "models": [version.ref()],
            "answer": answer,
            "timings_ms": {
                "decode": round(decode_ms, 3),
                "infer": round(infer_ms, 3),
                "total": round((time.perf_counter() - started) * 1000, 3),
            },
        }

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
