"""Runs a question graph on one image.

Every step is an asyncio task that waits for the steps it needs, so independent steps run
concurrently. A step whose ``when:`` is false is skipped, and so is every step that needs it.
A model step on crops submits all crops to the model's batcher at once and gathers them, so
they run as one batch. Each step's output is cached (see :mod:`argus.graphs.cache`), and the
image is decoded lazily, once per size a model asks for, only if some step has to run (the
model runner decides how; ops decode full size).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from argus.contracts import ModelUsed, StepReport
from argus.galleries.matcher import GalleryIndex
from argus.galleries.who import name_faces, vectors_of
from argus.graphs import attention, ops
from argus.graphs.cache import StepCache, step_key
from argus.graphs.ops import StepOutput
from argus.graphs.spec import GraphSpec, ModelRef, Step
from argus.images import DecodedImage, ImageSource
from argus.models.versions import VersionInfo
from argus.runtime.runner import ModelRunner
from argus.tasks import TASKS

log = logging.getLogger(__name__)

Resolver = Callable[[ModelRef], VersionInfo]


def used(version: VersionInfo) -> ModelUsed:
    return ModelUsed(name=version.name, version=version.number, digest=version.digest)


@dataclass
class StepRun:
    """What happened to one step: times are seconds since the request started."""

    name: str
    started: float | None = None
    ended: float | None = None
    cached: bool = False
    skipped: str | None = None
    output: StepOutput | None = None
    key: str | None = None
    version: VersionInfo | None = None
    infer_ms: float = 0.0

    def report(self) -> StepReport:
        ms = (self.ended - self.started) * 1000 if self.started is not None and self.ended else 0.0
        return StepReport(
            ms=round(ms, 3),
            cached=self.cached,
            skipped=self.skipped,
            start_ms=round(self.started * 1000, 3) if self.started is not None else None,
            end_ms=round(self.ended * 1000, 3) if self.ended is not None else None,
            model=used(self.version) if self.version is not None and self.skipped is None
            else None,
        )


@dataclass
class GraphResult:
    spec: GraphSpec
    runs: dict[str, StepRun]
    decode_ms: float
    infer_ms: float = field(default=0.0)

    def answer(self) -> dict[str, Any]:
        """Copies of the results, so a caller may change the answer without touching the
        cache."""
        if self.spec.single:
            run = self.runs[self.spec.answer[0]]
            return copy.deepcopy(run.output.result) if run.output is not None else {}
        return {
            name: copy.deepcopy(self.runs[name].output.result)  # type: ignore[union-attr]
            if self.runs[name].output is not None
            else None
            for name in self.spec.answer
        }

    def models(self) -> list[ModelUsed]:
        seen: dict[str, ModelUsed] = {}
        for run in self.runs.values():
            if run.version is not None and run.skipped is None:
                seen.setdefault(run.version.digest, used(run.version))
        return list(seen.values())

    def steps(self) -> dict[str, StepReport]:
        return {name: run.report() for name, run in self.runs.items()}

    @property
    def cached(self) -> bool:
        ran = [run for run in self.runs.values() if run.skipped is None]
        return bool(ran) and all(run.cached for run in ran)


class GraphExecutor:
    """Runs graphs: the order of steps, ``when:``, ops and the step cache. Model steps go to
    the :class:`~argus.runtime.runner.ModelRunner` the role was built with."""

    def __init__(self, runner: ModelRunner, cache: StepCache) -> None:
        self.runner = runner
        self.cache = cache

    async def run(
        self,
        spec: GraphSpec,
        image: ImageSource,
        params: Mapping[str, Any],
        resolve: Resolver,
        gallery: GalleryIndex | None = None,
    ) -> GraphResult:
        """Answer ``spec`` for ``image``. ``params`` are the request's (top_k, crops, …);
        a step's own parameters win over them. ``gallery``: what ``who`` steps match against."""
        t0 = time.perf_counter()
        runs = {name: StepRun(name) for name in spec.steps}
        if len(spec.steps) == 1:
            (step,) = spec.steps.values()
            await self._run_step(step, runs, {}, image, params, resolve, t0, gallery)
        else:
            tasks: dict[str, asyncio.Task[None]] = {}
            for name, step in spec.steps.items():  # every step after the ones it needs
                tasks[name] = asyncio.create_task(
                    self._run_step(step, runs, tasks, image, params, resolve, t0, gallery),
                    name=f"step-{spec.name}-{name}",
                )
            try:
                await asyncio.gather(*tasks.values())
            except BaseException:
                for task in tasks.values():
                    task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
                raise
        # Yield once even when every step came from the cache, so a caller looping over cached
        # answers cannot starve the other tasks of the event loop (model loads, other requests).
        await asyncio.sleep(0)
        result = GraphResult(spec, runs, image.decode_ms)
        result.infer_ms = sum(run.infer_ms for run in runs.values())
        return result

    async def _run_step(
        self,
        step: Step,
        runs: dict[str, StepRun],
        tasks: Mapping[str, asyncio.Task[None]],
        image: ImageSource,
        params: Mapping[str, Any],
        resolve: Resolver,
        t0: float,
        gallery: GalleryIndex | None = None,
    ) -> None:
        for dep in step.needs:
            await tasks[dep]
        run = runs[step.name]
        skipped = next((dep for dep in step.needs if runs[dep].skipped is not None), None)
        if skipped is not None:
            run.skipped = f"needs step {skipped!r}, which was skipped"
            return
        run.started = time.perf_counter() - t0
        try:
            if step.when is not None:
                results = {dep: runs[dep].output.result for dep in step.needs}  # type: ignore[union-attr]
                if not step.when.evaluate(results):
                    run.skipped = f"when: {step.when.source} was false"
                    return
            if step.model is not None:
                await self._model_step(step, run, runs, image, params, resolve)
            else:
                await self._op_step(step, run, runs, image, params, gallery)
        finally:
            run.ended = time.perf_counter() - t0

    async def _model_step(
        self,
        step: Step,
        run: StepRun,
        runs: Mapping[str, StepRun],
        image: ImageSource,
        request_params: Mapping[str, Any],
        resolve: Resolver,
    ) -> None:
        if step.model is None:
            raise ValueError(f"step {step.name} has no model")
        version = resolve(step.model)
        run.version = version
        params = {**request_params, **step.params}
        if not params.get("crops"):
            params.pop("crops", None)  # crops=false and no crops key are the same request
        upstream = [runs[step.input].key or ""] if step.input is not None else []
        run.key = step_key(image.sha256, f"model:{version.digest}", params, upstream)
        hit = self.cache.get(run.key)
        if hit is not None:
            run.output, run.cached = hit, True
            return
        if step.input is not None:
            source = runs[step.input].output
            crops = source.crops if source is not None and source.crops is not None else []
            output = await self._on_crops(version, crops, image.sha256, params, run)
            maps = source.to_source if source is not None else None
            task = TASKS.get(version.task)
            if maps is not None and task is not None:
                # The answers on crops move into the image's pixels here, where the crop
                # geometry is known (a model service never sees it).
                output.result["results"] = [
                    task.to_source(result, matrix)
                    for result, matrix in zip(output.result["results"], maps, strict=True)
                ]
        else:
            answer = await self.runner.answer(version, image, params)
            run.infer_ms = answer.infer_ms
            output = StepOutput(answer.result)
        run.output = output
        self.cache.put(run.key, output)

    async def _on_crops(
        self,
        version: VersionInfo,
        crops: list[ops.Array],
        image_sha: str,
        params: dict[str, Any],
        run: StepRun,
    ) -> StepOutput:
        images = [
            DecodedImage(
                rgb=crop,
                width=int(crop.shape[1]),
                height=int(crop.shape[0]),
                sha256=f"{image_sha}#{i}",
                format="crop",
            )
            for i, crop in enumerate(crops)
        ]
        answers = await self.runner.answer_crops(version, images, params)
        run.infer_ms = answers[0].infer_ms if answers else 0.0
        return StepOutput({"count": len(answers), "results": [a.result for a in answers]})

    async def _op_step(
        self,
        step: Step,
        run: StepRun,
        runs: Mapping[str, StepRun],
        image: ImageSource,
        request_params: Mapping[str, Any],
        gallery: GalleryIndex | None = None,
    ) -> None:
        if step.source is None or step.op is None:
            raise ValueError(f"step {step.name} is not an operation")
        src_run = runs[step.source]
        params = dict(step.params)
        if step.op in ("align", "crop", "mesh_crop"):
            params["crops"] = bool(params.get("crops", request_params.get("crops", False)))
        reads = {key: [runs[name] for name in names] for key, names in step.reads.items()}
        upstream = [src_run.key or ""] + [r.key or "" for rs in reads.values() for r in rs]
        if step.op == "who" and gallery is not None:
            # The answer changes with the gallery's contents: its generation is in the key.
            params["gallery"] = [gallery.name, gallery.generation]
        run.key = step_key(image.sha256, f"op:{step.op}", params, upstream)
        # A who answer costs one matrix product and names people: it is never kept, so no name
        # outlives a forget in a server's memory.
        keep = step.op != "who"
        hit = self.cache.get(run.key) if keep else None
        if hit is not None:
            run.output, run.cached = hit, True
            return
        if src_run.output is None:
            raise ValueError(f"step {step.source} has no output")
        source = src_run.output.result
        if step.op == "who":
            (vec_run,) = reads["vectors"]
            vectors = vectors_of(vec_run.output.result if vec_run.output else {}, vec_run.name)
            digest = vec_run.version.digest if vec_run.version is not None else ""
            output = StepOutput(name_faces(source, step.source, vectors, gallery, digest))
        elif step.op == "threshold":
            output = ops.threshold(source, step.source, float(params["min_score"]))
        elif step.op == "top_k":
            output = ops.top_k(source, step.source, int(params["k"]))
        elif step.op == "attention":
            others = {
                key: [(r.name, r.output.result if r.output is not None else {}) for r in rs]
                for key, rs in reads.items()
            }
            output = attention.attention(source, step.source, others)
        else:
            full = await image.get(None)
            if step.op == "align":
                output = await asyncio.to_thread(
                    ops.align,
                    full.rgb,
                    source,
                    step.source,
                    int(params["size"]),
                    params["crops"],
                )
            elif step.op == "mesh_crop":
                output = await asyncio.to_thread(
                    ops.mesh_crop,
                    full.rgb,
                    source,
                    step.source,
                    int(params["size"]),
                    float(params["scale"]),
                    params["crops"],
                )
            else:
                size = params.get("size")
                output = await asyncio.to_thread(
                    ops.crop,
                    full.rgb,
                    source,
                    step.source,
                    float(params.get("margin", 0.0)),
                    int(size) if size is not None else None,
                    params["crops"],
                )
        run.output = output
        if keep:
            self.cache.put(run.key, output)

