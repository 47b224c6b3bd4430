"""Keep-uncertain through the real core and the tiny classifier: an uncertain answer keeps its
image, a confident one does not; a canary that disagrees with production keeps it; the queue
is bounded and drops (counted) when full; a failure to keep never fails the answer."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from argus.contracts import AskOptions
from argus.core import Core
from argus.graphs.executor import GraphResult
from argus.graphs.parse import model_graph
from argus.images import ImageSource
from argus.review.keeper import MAX_PENDING
from argus.server import local_core
from argus.settings import Settings
from tests.review.images import GREY, RED, greys
from tests.tiny_model import TINY, register_tiny

T = TypeVar("T")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A home holding only the tiny classifier, keeping answers under 0.6 for review."""
    settings = Settings(home=tmp_path / "home", keep_uncertain=0.6, intra_op_threads=1)
    register_tiny(settings, tmp_path / "tiny")
    return settings


def with_core(settings: Settings, work: Callable[[Core], Awaitable[T]]) -> T:
    async def main() -> T:
        core = local_core(settings)
        try:
            return await work(core)
        finally:
            await core.close()

    return asyncio.run(main())


def test_an_uncertain_answer_is_kept_and_a_confident_one_is_not(settings: Settings) -> None:
    async def work(core: Core) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        grey = await core.ask(TINY, GREY, AskOptions(source="cli"))
        await core.ask(TINY, RED)
        await core.keeper.idle()
        return core.review.items(), grey.answer

    items, answer = with_core(settings, work)
    assert answer["labels"][0]["score"] < 0.6  # the premise: grey is uncertain
    assert len(items) == 1
    (item,) = items
    assert (item["model"], item["version"], item["reason"], item["source"]) == (
        TINY, 1, "uncertain", "cli")
    assert item["guess"] == answer["labels"][0]["label"]
    assert item["score"] == answer["labels"][0]["score"]
    assert item["detail"]["threshold"] == 0.6 and item["format"] == "png"


def test_the_request_chooses_its_own_threshold(settings: Settings) -> None:
    async def work(core: Core) -> set[str]:
        await core.ask(TINY, GREY, AskOptions(keep_uncertain=0))  # off for this request
        await core.ask(TINY, RED, AskOptions(keep_uncertain=1.0))  # everything under 1
        await core.keeper.idle()
        return {item["digest"] for item in core.review.items()}

    assert with_core(settings, work) == {sha(RED)}
    off = settings.model_copy(update={"keep_uncertain": None})  # the server's is off
    assert with_core(off, lambda core: _ask_and_list(core, GREY)) == {sha(RED)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _ask_and_list(core: Core, data: bytes) -> set[str]:
    await core.ask(TINY, data)
    await core.keeper.idle()
    return {item["digest"] for item in core.review.items()}


def _register_permuted(core: Core, tmp_path: Path) -> None:
    """Version 2 of the tiny classifier: the same network with two labels swapped, so it
    calls a red image green."""
    src = tmp_path / "permuted"
    register_tiny(core.settings, src)  # the same files again: version 1, nothing new
    (src / "labels.txt").write_text("green\nred\nblue\ngrey\n")
    fields = {"task": "classify", "model": "model.onnx", "labels": "labels.txt",
              "preprocess": {"resize_shorter": 32, "crop": 32},
              "license": "Apache-2.0", "source": {"note": "test"}}
    assert core.registry.register(TINY, src, fields, actor="test").version.number == 2


@pytest.mark.parametrize("percent", [0, 100])
def test_a_canary_that_disagrees_keeps_the_image(
    settings: Settings, tmp_path: Path, percent: int
) -> None:
    """Whichever side answers (production at 0%, the canary at 100%), the other is asked."""
    confident = settings.model_copy(update={"keep_uncertain": 0.01})  # nothing is uncertain

    async def work(core: Core) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
        _register_permuted(core, tmp_path)
        core.registry.canary(TINY, 2, percent, actor="test")
        core.resolutions.refresh(force=True)
        answer = await core.ask(TINY, RED)
        await core.keeper.idle()
        return core.review.items(), answer.models[0].version, dict(core.keeper.events())

    items, answered_by, events = with_core(confident, work)
    assert answered_by == (2 if percent == 100 else 1)
    (item,) = items
    assert item["reason"] == "disagreement" and item["version"] == answered_by
    other = 1 if answered_by == 2 else 2
    assert item["detail"]["other"]["version"] == other
    assert {item["guess"], item["detail"]["other"]["label"]} == {"red", "green"}
    assert events["compared"] == 1 and events["kept"] == 1


def test_a_canary_that_agrees_keeps_nothing(settings: Settings, tmp_path: Path) -> None:
    confident = settings.model_copy(update={"keep_uncertain": 0.01})

    async def work(core: Core) -> tuple[int, dict[str, int]]:
        src = tmp_path / "same-labels"
        register_tiny(core.settings, src)
        (src / "classes.txt").write_text((src / "labels.txt").read_text())  # another digest
        fields = {"task": "classify", "model": "model.onnx", "labels": "classes.txt",
                  "preprocess": {"resize_shorter": 32, "crop": 32}, "license": "Apache-2.0",
                  "source": {"note": "test"}}
        assert core.registry.register(TINY, src, fields, actor="test").version.number == 2
        core.registry.canary(TINY, 2, 50, actor="test")
        core.resolutions.refresh(force=True)
        await core.ask(TINY, RED)
        await core.keeper.idle()
        return len(core.review.items()), dict(core.keeper.events())

    kept, events = with_core(confident, work)
    assert kept == 0 and events["compared"] == 1


async def graph_result(core: Core, data: bytes) -> GraphResult:
    """The tiny classifier's graph run on ``data``, as ``Core.ask`` runs it."""
    version = core.resolve(TINY, AskOptions(), "")
    source = ImageSource(data, sha(data), core.limits)
    try:
        return await core.executor.run(model_graph(TINY, "classify"), source, {},
                                       lambda _ref: version)
    finally:
        source.close()


def test_a_full_queue_drops_and_counts(settings: Settings) -> None:
    images = greys(MAX_PENDING + 3)

    async def work(core: Core) -> tuple[dict[str, int], int]:
        results = [await graph_result(core, data) for data in images]
        # Considered one after the other with no pause: the keeper's task has no turn before
        # the queue is full.
        for data, result in zip(images, results, strict=True):
            core.keeper.consider(TINY, data, sha(data), "PNG", result, 0.6, {})
        await core.keeper.idle()
        return dict(core.keeper.events()), len(core.review.items(limit=1000))

    events, kept = with_core(settings, work)
    assert events["dropped"] == 3
    assert events["kept"] == kept == MAX_PENDING


def test_a_failure_to_keep_does_not_fail_the_answer(settings: Settings) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.review_dir.write_text("a file where the review folder should be")

    async def work(core: Core) -> tuple[dict[str, Any], dict[str, int]]:
        answer = await core.ask(TINY, GREY)
        await core.keeper.idle()
        return answer.to_json(), dict(core.keeper.events())

    answer, events = with_core(settings, work)
    assert answer["answer"]["labels"]
    assert events["failed"] == 1 and events["kept"] == 0


def test_a_built_in_question_keeps_too(home_copy: Path, photos: dict[str, bytes]) -> None:
    """``labels`` (a built-in graph, parsed before any model is known) on the pulled
    classifier: with a threshold of 1, every answer is under it."""
    settings = Settings(home=home_copy, keep_uncertain=1.0)

    async def work(core: Core) -> list[dict[str, Any]]:
        await core.ask("labels", photos["coffee"])
        await core.ask("faces", photos["astronaut"])  # not a classifier: never kept
        await core.keeper.idle()
        return core.review.items()

    (item,) = with_core(settings, work)
    assert (item["digest"], item["model"], item["question"]) == (
        sha(photos["coffee"]), "efficientnet-lite0", "labels")
