"""Runtime choice: the manifest's runtime block says which engine runs a model unless the
settings override it; bf16 needs the manifest's say-so."""

from __future__ import annotations

from pathlib import Path

from argus.engines import RuntimeChoice
from argus.manifest import RuntimeHints
from argus.settings import Settings
from tests.asking import ask_json


def test_bf16_only_where_the_manifest_checked_it() -> None:
    assert RuntimeChoice.resolve(RuntimeHints(), "openvino", "bf16").precision == "f32"
    checked = RuntimeChoice.resolve(RuntimeHints(bf16_checked=True), "openvino", "bf16")
    assert checked.precision == "bf16"
    assert RuntimeChoice.resolve(RuntimeHints(engine="openvino"), None, None).engine == "openvino"


def test_the_runtime_setting_reaches_the_models_a_server_loads(
    home_copy: Path, photos: dict[str, bytes]
) -> None:
    import asyncio

    from argus.server import local_core

    async def ask(settings: Settings) -> tuple[str, str, list[str]]:
        core = local_core(settings)
        try:
            answer = await ask_json(core, "labels", photos["coffee"])
            runtimes = [entry.runtime for entry in core.runner.loaded()]
        finally:
            await core.close()
        return answer["answer"]["labels"][0]["label"], runtimes[0], runtimes

    default = asyncio.run(ask(Settings(home=home_copy)))
    chosen = asyncio.run(ask(Settings(home=home_copy, runtime="openvino", precision="bf16")))
    assert default[1] == "onnxruntime-f32"
    assert chosen[1] == "openvino-bf16"  # the pulled manifest records its bf16 check
    assert chosen[0] == default[0] == "espresso"
