"""Readiness is 503 while the served models load and 200 once they are loaded; liveness is
200 throughout."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import ARGUS, start_server


def heavy_classifier(path: Path, megabytes: int) -> None:
    """A tiny classifier carrying a large weight, so that verifying and loading it takes a
    while (the weight is real data in the file: hashed and read on every load)."""
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 3, 8, 8])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])
    weight = numpy_helper.from_array(
        np.random.default_rng(0).random(megabytes * 2**18, dtype=np.float32), "ballast"
    )
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    mean = helper.make_node("ReduceMean", ["pixels", "axes"], ["means"], keepdims=0)
    size = helper.make_node("Size", ["ballast"], ["n"])
    cast = helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT)
    zero = helper.make_node("Mul", ["nf", "zero"], ["z"])
    add = helper.make_node("Add", ["means", "z"], ["scores"])
    zero_t = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph([mean, size, cast, zero, add], "heavy", [x], [y],
                              initializer=[axes, weight, zero_t])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def test_ready_only_once_the_models_are_loaded(home_copy: Path, tmp_path: Path) -> None:
    model = tmp_path / "heavy.onnx"
    heavy_classifier(model, 192)
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    env = {**os.environ, "ARGUS_HOME": str(home_copy)}
    added = subprocess.run(
        [ARGUS, "models", "add", "heavy", str(model), "--task", "classify", "--labels",
         str(labels), "--preprocess", "resize_shorter=8", "--license", "Apache-2.0"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert added.returncode == 0, added.stderr
    server = start_server(home_copy)
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                live = httpx.get(f"{server.url}/v2/health/live", timeout=5)
                ready = httpx.get(f"{server.url}/v2/health/ready", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            assert live.status_code == 200
            statuses.append(ready.status_code)
            if ready.status_code == 200:
                break
            assert ready.json()["ready"] is False and "loading" in ready.json()["error"]
            time.sleep(0.02)
        assert statuses and statuses[0] == 503, statuses
        assert statuses[-1] == 200
        assert set(statuses) == {503, 200}
    finally:
        server.stop()


def test_a_tampered_package_loaded_on_demand_answers_503_with_the_reason(
    tmp_path: Path,
) -> None:
    import asyncio

    from argus.server import in_process_app
    from argus.settings import Settings
    from tests.graphs.conftest import register_tint
    from tests.records.test_records import GREEN

    tint = register_tint(tmp_path)
    (tint.path / "model.onnx").write_bytes(b"not the model that was registered")
    app = in_process_app(Settings(home=tmp_path, preload=False))

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://argus") as client:
            answers = [await client.post("/v1/questions/tint", content=GREEN) for _ in range(2)]
            answers.append(await client.get("/v2/health/ready"))
        await app.state.core.close()
        return answers

    first, again, ready = asyncio.run(main())
    reason = "model tint version 1 is refused: package tint: file model.onnx was modified"
    assert first.status_code == again.status_code == 503
    assert first.json()["error"].startswith(reason) and again.json() == first.json()
    assert ready.json()["refused"][0]["reason"] == first.json()["error"]
