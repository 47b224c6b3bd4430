"""The model host: the memory budget unloads the least recently used model, and loading one
model never stalls answers from a loaded one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from argus.contracts import AskOptions
from argus.server import local_core
from argus.settings import Settings
from tests.asking import ask_json


def test_memory_budget_unloads_least_recently_used(home_copy: Path,
                                                   photos: dict[str, bytes]) -> None:
    async def main() -> None:
        # room for one model at a time; no step cache, so a repeat must reload
        settings = Settings(home=home_copy, model_memory_mb=1, cache_entries=0)
        core = local_core(settings)
        try:
            first = await ask_json(core, "labels", photos["coffee"], AskOptions())
            assert first["answer"]["labels"][0]["label"] == "espresso"
            loaded = {e.version.name: e.memory_bytes for e in core.runner.loaded()}
            assert loaded["efficientnet-lite0"] > 5 * 2**20  # measured growth, not a guess
            faces = await ask_json(core, "faces", photos["astronaut"], AskOptions())
            assert len(faces["answer"]["faces"]) == 1
            assert [e.version.name for e in core.runner.loaded()] == ["mtcnn"]
            again = await ask_json(core, "labels", photos["coffee"], AskOptions())
            assert again["answer"] == first["answer"]  # waited for the reload, did not fail
            assert core.runner.events == {"loads": 3, "unloads": 2}
        finally:
            await core.close()

    asyncio.run(main())


def test_loading_one_model_does_not_stall_a_loaded_one(home_copy: Path,
                                                       photos: dict[str, bytes]) -> None:
    async def main() -> None:
        core = local_core(Settings(home=home_copy))
        try:
            await ask_json(core, "faces", photos["coffee"], AskOptions())  # mtcnn loaded
            labels_version = core.registry.resolve("efficientnet-lite0")
            load = asyncio.create_task(core.runner.get(labels_version))
            done_during_load = 0
            while not load.done():
                await ask_json(core, "faces", photos["coffee"], AskOptions())
                if not load.done():
                    done_during_load += 1
            await load
            assert done_during_load >= 1
        finally:
            await core.close()

    asyncio.run(main())


def test_a_reloaded_model_counts_what_it_holds(home_copy: Path, photos: dict[str, bytes]) -> None:
    """A reload measures little RSS growth (freed arenas are reused), yet holds the same
    weights: the budget must count it as much as its first load."""

    async def main() -> tuple[int, int, int]:
        settings = Settings(home=home_copy, model_memory_mb=1, cache_entries=0)
        core = local_core(settings)
        try:
            def labels_memory() -> int:
                return next(e.memory_bytes for e in core.runner.loaded()
                            if e.version.name == "efficientnet-lite0")

            await ask_json(core, "labels", photos["coffee"])
            first = labels_memory()
            await ask_json(core, "faces", photos["astronaut"])  # unloads labels
            await ask_json(core, "labels", photos["coffee"])  # loads it again
            version = core.registry.resolve("efficientnet-lite0")
            package = core.store.load(version.digest)
            weights = sum(p.stat().st_size for p in package.onnx_files().values())
            return first, labels_memory(), weights
        finally:
            await core.close()

    first, again, weights = asyncio.run(main())
    assert again >= first >= weights > 10 * 2**20


def test_a_version_removed_from_the_registry_leaves_memory(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    from tests.tiny_model import TINY, register_tiny

    settings = Settings(home=tmp_path / "home")
    register_tiny(settings, tmp_path / "v1")
    src = tmp_path / "v2"
    register_tiny(settings, src)  # the same files: version 1 again
    (src / "labels.txt").write_text("rouge\nvert\nbleu\ngris\n")  # a retrain, another digest

    async def main() -> tuple[set[str], set[str], dict[str, int]]:
        core = local_core(settings)
        try:
            fields = {"task": "classify", "model": "model.onnx", "labels": "labels.txt",
                      "preprocess": {"resize_shorter": 32, "crop": 32},
                      "license": "Apache-2.0", "source": {"note": "test"}}
            v2 = core.registry.register(TINY, src, fields, actor="test").version
            await ask_json(core, TINY, photos["coffee"], AskOptions(version=2))
            await ask_json(core, TINY, photos["coffee"])  # version 1, production
            before = {e.version.digest for e in core.runner.loaded()}
            core.registry.delete_version(TINY, 2, actor="test")
            core.resolutions.refresh(force=True)  # what the next request does within 0.25 s
            await ask_json(core, TINY, photos["coffee"])
            await asyncio.sleep(0)  # the unload runs once its queue is empty
            await asyncio.sleep(0.1)
            after = {e.version.digest for e in core.runner.loaded()}
            return before - after, {v2.digest}, dict(core.runner.events)
        finally:
            await core.close()

    gone, removed, events = asyncio.run(main())
    assert gone == removed
    assert events["unloads"] == 1
