"""The executor on real models: gating, skipping, concurrency, crops as one batch, the cache."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from argus.contracts import AskOptions
from argus.core import Core
from argus.errors import BadInput, ConfigError
from argus.graphs.cache import StepCache
from argus.graphs.ops import StepOutput
from argus.images import DecodeSize
from argus.server import local_core
from argus.settings import Settings
from tests.asking import ask_json

T = TypeVar("T")

CAT_FACES = """\
    question: cat-faces
    steps:
      labels: {model: efficientnet-lite0, top_k: 3}
      faces: {model: mtcnn, when: "any labels.label in ['tiger cat', 'tabby', 'Egyptian cat']"}
      aligned: {op: align, from: faces}
      tint: {model: tint, input: aligned}
    answer: [labels, faces, tint]
    """

PORTRAIT = """\
    question: portrait
    steps:
      faces: {model: mtcnn}
      aligned: {op: align, from: faces, size: 112}
      tint: {model: tint, input: aligned, when: "faces.count > 0"}
      strong: {op: threshold, from: faces, min_score: 0.9}
      boxes: {op: crop, from: strong, margin: 0.1, size: 32}
      box_tint: {model: tint, input: boxes, when: "strong.count > 0"}
    answer: [faces, aligned, tint, boxes, box_tint]
    """


def run(home: Path, body: Callable[[Core], Awaitable[T]], **settings: Any) -> T:
    async def main() -> T:
        core = local_core(Settings(home=home, **settings))
        try:
            return await body(core)
        finally:
            await core.close()

    return asyncio.run(main())


def add_graph(core: Core, tmp: Path, text: str) -> None:
    path = tmp / "graph.yaml"
    path.write_text(textwrap.dedent(text))
    core.catalogue.add(path)


async def batcher_items(core: Core, model: str) -> int:
    entry = await core.runner.get(core.registry.resolve(model))
    return entry.batcher.stats.items


def test_a_false_gate_skips_the_expensive_step_and_everything_after_it(
    tint_home: Path, photos: dict[str, bytes], tmp_path: Path
) -> None:
    async def body(core: Core) -> tuple[dict[str, Any], dict[str, Any], bool]:
        add_graph(core, tmp_path, CAT_FACES)
        coffee = await ask_json(core, "cat-faces", photos["coffee"])
        mtcnn_digest = core.registry.resolve("mtcnn").digest
        loaded_before_cat = core.runner.is_loaded(mtcnn_digest)
        cat = await ask_json(core, "cat-faces", photos["chelsea"])
        return coffee, cat, loaded_before_cat

    coffee, cat, mtcnn_loaded = run(tint_home, body)
    steps = coffee["steps"]
    gate = "any labels.label in ['tiger cat', 'tabby', 'Egyptian cat']"
    assert steps["labels"]["skipped"] is None and not steps["labels"]["cached"]
    assert steps["faces"]["skipped"] == f"when: {gate} was false"
    assert steps["aligned"]["skipped"] == "needs step 'faces', which was skipped"
    assert steps["tint"]["skipped"] == "needs step 'aligned', which was skipped"
    assert coffee["answer"]["faces"] is None and coffee["answer"]["tint"] is None
    assert coffee["answer"]["labels"]["labels"][0]["label"] == "espresso"
    assert [m["name"] for m in coffee["models"]] == ["efficientnet-lite0"]
    assert "model" not in steps["faces"]
    assert mtcnn_loaded is False  # the expensive model was never even loaded
    # The same graph on a cat: the gate opens and the rest runs.
    assert cat["steps"]["faces"]["skipped"] is None
    assert cat["steps"]["tint"]["skipped"] is None
    assert {m["name"] for m in cat["models"]} == {"efficientnet-lite0", "mtcnn", "tint"}
    assert cat["answer"]["faces"] == {"faces": []}  # a cat has no human face
    assert cat["answer"]["tint"] == {"count": 0, "results": []}


def test_face_gate_ops_and_crops_as_one_batch(
    tint_home: Path, photos: dict[str, bytes], two_faces: bytes, tmp_path: Path
) -> None:
    async def body(core: Core) -> tuple[dict[str, Any], dict[str, Any], int, list[int]]:
        add_graph(core, tmp_path, PORTRAIT)
        before = await batcher_items(core, "tint")
        both = await ask_json(core, "portrait", two_faces)
        after_faces = await batcher_items(core, "tint")
        coffee = await ask_json(core, "portrait", photos["coffee"])
        after_coffee = await batcher_items(core, "tint")
        assert after_coffee == after_faces  # gated: tint never ran on coffee
        entry = await core.runner.get(core.registry.resolve("tint"))
        return both, coffee, after_faces - before, list(entry.batcher.stats.by_size)

    both, coffee, tint_items, sizes = run(tint_home, body)
    answer = both["answer"]
    assert len(answer["faces"]["faces"]) == 2
    assert answer["aligned"] == {"count": 2, "size": 112}
    assert answer["tint"]["count"] == 2
    colours = {r["labels"][0]["label"] for r in answer["tint"]["results"]}
    assert colours <= {"red", "green", "blue"}
    assert answer["boxes"]["count"] == 2 and answer["boxes"]["size"] == 32
    left, right = answer["boxes"]["boxes"]
    assert sorted([left[0], right[0]])[1] >= 512  # one face in each half
    assert answer["box_tint"]["count"] == 2
    assert tint_items == 4
    assert max(sizes) >= 2  # the crops of one step went through the batcher together
    steps = coffee["steps"]
    assert steps["tint"]["skipped"] == "when: faces.count > 0 was false"
    assert steps["box_tint"]["skipped"] == "when: strong.count > 0 was false"
    assert coffee["answer"]["aligned"] == {"count": 0, "size": 112}
    assert coffee["answer"]["boxes"] == {"count": 0, "boxes": [], "size": 32}


def test_independent_steps_run_concurrently(pulled_home: Path, photos: dict[str, bytes]) -> None:
    async def body(core: Core) -> dict[str, Any]:
        return await ask_json(core, "describe", photos["astronaut"])

    steps = run(pulled_home, body)["steps"]
    labels, faces, aligned = steps["labels"], steps["faces"], steps["aligned"]
    # labels and faces need nothing: each started before the other finished.
    assert labels["start_ms"] < faces["end_ms"] and faces["start_ms"] < labels["end_ms"]
    # aligned needs faces, so it waited for it: the timestamps tell the two cases apart.
    assert aligned["start_ms"] >= faces["end_ms"]
    assert not labels["cached"] and not faces["cached"]


def test_a_repeated_image_is_answered_from_the_cache(
    pulled_home: Path, photos: dict[str, bytes]
) -> None:
    async def body(core: Core) -> dict[str, Any]:
        first = await ask_json(core, "describe", photos["astronaut"])
        items = {m: await batcher_items(core, m) for m in ("efficientnet-lite0", "mtcnn")}
        second = await ask_json(core, "describe", photos["astronaut"])
        after = {m: await batcher_items(core, m) for m in ("efficientnet-lite0", "mtcnn")}
        labels = await ask_json(core, "labels", photos["astronaut"])
        top2 = await ask_json(core, "labels", photos["astronaut"], AskOptions(top_k=2))
        return {"first": first, "second": second, "labels": labels, "top2": top2,
                "items": items, "after": after}

    out = run(pulled_home, body)
    first, second = out["first"], out["second"]
    assert first["cached"] is False
    assert second["cached"] is True
    assert all(step["cached"] for step in second["steps"].values())
    assert out["after"] == out["items"]  # no model ran again
    assert second["answer"] == first["answer"]
    assert second["models"] == first["models"]
    assert second["timings_ms"]["infer"] == 0 and second["timings_ms"]["decode"] == 0
    # The labels question shares the describe graph's labels step (same model, same params).
    assert out["labels"]["cached"] is True
    assert out["labels"]["answer"] == first["answer"]["labels"]
    # Other parameters are another entry.
    assert out["top2"]["cached"] is False and len(out["top2"]["answer"]["labels"]) == 2


def test_cached_answers_still_let_other_tasks_run(
    pulled_home: Path, photos: dict[str, bytes]
) -> None:
    async def body(core: Core) -> tuple[int, bool]:
        await ask_json(core, "labels", photos["coffee"])
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        cached = True
        for _ in range(20):
            cached = cached and (await ask_json(core, "labels", photos["coffee"]))["cached"]
        task.cancel()
        return ticks, cached

    ticks, cached = run(pulled_home, body)
    assert cached and ticks >= 10


def test_single_model_questions_keep_their_answer_shape(
    pulled_home: Path, photos: dict[str, bytes]
) -> None:
    async def body(core: Core) -> list[dict[str, Any]]:
        return [
            await ask_json(core, "labels", photos["coffee"]),
            await ask_json(core, "efficientnet-lite0", photos["coffee"]),
            await ask_json(core, "faces", photos["astronaut"], AskOptions(crops=True)),
            await ask_json(core, "mtcnn", photos["astronaut"]),
        ]

    labels, model, faces, mtcnn = run(pulled_home, body)
    assert list(labels["answer"]) == ["labels"] and model["answer"] == labels["answer"]
    assert labels["answer"]["labels"][0]["label"] == "espresso"
    assert list(faces["answer"]) == ["faces"] and "crop_png" in faces["answer"]["faces"][0]
    assert list(mtcnn["answer"]) == ["faces"] and "crop_png" not in mtcnn["answer"]["faces"][0]
    assert list(labels["steps"]) == ["labels"] and list(mtcnn["steps"]) == ["faces"]


def test_version_pins_only_single_model_questions(
    pulled_home: Path, photos: dict[str, bytes]
) -> None:
    async def body(core: Core) -> dict[str, Any]:
        with pytest.raises(BadInput, match=r"uses 2 .*use alias= or app="):
            await ask_json(core, "describe", photos["coffee"], AskOptions(version=1))
        return await ask_json(core, "labels", photos["coffee"], AskOptions(version=1))

    assert run(pulled_home, body)["models"][0]["version"] == 1


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = StepCache(max_entries=2)
    for key in ("a", "b"):
        cache.put(key, StepOutput({"key": key}))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", StepOutput({"key": "c"}))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2
    big = StepOutput({"count": 1}, crops=[np.zeros((112, 112, 3), np.uint8)])  # 37,632 bytes
    small = StepCache(max_entries=10, max_bytes=80_000)
    small.put("one", big)
    small.put("two", big)
    small.put("three", big)  # over the byte budget: the oldest goes
    assert small.get("one") is None and small.get("two") is not None
    assert len(small) == 2 and 75_000 < small.bytes <= 80_000
    small.put("huge", StepOutput({}, crops=[np.zeros((200, 200, 3), np.uint8)]))
    assert small.get("huge") is None and len(small) == 2  # bigger than everything: not kept
    with pytest.raises(ConfigError, match="ARGUS_CACHE_ENTRIES"):
        StepCache(max_entries=-1)
    off = StepCache(max_entries=0)
    off.put("a", StepOutput({}))
    assert off.get("a") is None


def test_two_steps_on_one_image_size_share_one_decode(
    pulled_home: Path, photos: dict[str, bytes], tmp_path: Path
) -> None:
    twice = """\
        question: twice
        steps:
          short: {model: efficientnet-lite0, top_k: 1}
          long: {model: efficientnet-lite0, top_k: 3}
        answer: [short, long]
        """
    decodes: list[Any] = []

    async def body(core: Core) -> tuple[dict[str, Any], dict[str, Any], int]:
        from argus import images

        add_graph(core, tmp_path, twice)
        single = await ask_json(core, "labels", photos["coffee"], AskOptions(top_k=3))
        before = await batcher_items(core, "efficientnet-lite0")
        original = images.ImageSource.decode_now

        def counted(self: images.ImageSource, size: Any) -> Any:
            decodes.append(size)
            return original(self, size)

        images.ImageSource.decode_now = counted  # type: ignore[method-assign]
        try:
            answer = await ask_json(core, "twice", photos["coffee"] + b"another request")
        finally:
            images.ImageSource.decode_now = original  # type: ignore[method-assign]
        return single, answer, await batcher_items(core, "efficientnet-lite0") - before

    single, answer, items = run(pulled_home, body)
    assert decodes == [DecodeSize(min_side=256)]  # one decode, at the size both steps need
    assert items == 2
    assert [x["label"] for x in answer["answer"]["long"]["labels"]] == [
        x["label"] for x in single["answer"]["labels"]
    ]
    assert answer["answer"]["short"]["labels"][0]["label"] == "espresso"
