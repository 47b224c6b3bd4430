"""argus.http.kserve in process: readiness follows the role's model loading (server and per
model), and an ``/infer`` body over its limit is refused before it is read. The protocol itself
is covered against a real server by tests/kserve/test_conformance.py."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

from argus.http.app import create_app
from argus.http.kserve import infer_body_limit
from argus.server import ServeOptions, build_parts
from argus.settings import Settings
from tests.inprocess import AppClient, LoopThread

MODELS = ("efficientnet-lite0", "mtcnn")


def test_ready_once_the_role_has_loaded_its_models(http_home: Path, loop: LoopThread) -> None:
    settings = Settings(home=http_home)
    opts = ServeOptions()
    parts = build_parts(opts, settings)
    client = AppClient(create_app(parts.plane, parts.metrics, parts.tokens,
                                  max_image_bytes=settings.max_image_bytes, core=parts.core),
                       loop)
    try:
        assert client.get("/v2/health/live").status_code == 200
        loading = client.get("/v2/health/ready")
        assert (loading.status_code, loading.json()) == (
            503, {"ready": False, "error": "models are still loading", "refused": []}
        )
        for name in MODELS:
            model = client.get(f"/v2/models/{name}/ready")
            assert (model.status_code, model.json()) == (503, {"name": name, "ready": False})

        loop.run(parts.load(opts))
        assert client.get("/v2/health/ready").json() == {"ready": True, "refused": []}
        for name in MODELS:
            for path in (f"/v2/models/{name}/ready", f"/v2/models/{name}/versions/1/ready"):
                model = client.get(path)
                assert (model.status_code, model.json()) == (200, {"name": name, "ready": True})
    finally:
        client.close()
        loop.run(parts.core.close())


def test_an_infer_body_over_its_limit_is_refused_unread(
    app: AppClient, photos: dict[str, bytes]
) -> None:
    limit = infer_body_limit(Settings().max_image_bytes)
    pulled: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            pulled.append(1)
            yield b"{" * 1024

    url = f"/v2/models/{MODELS[0]}/infer"
    refused = app.post(url, content=body(), headers={"Content-Length": str(limit + 1)})
    assert refused.status_code == 413
    assert refused.json() == {
        "error": f"the request is {limit + 1:,} bytes, over the limit of {limit:,} bytes"
    }
    assert pulled == []

    image = {"name": "image", "datatype": "BYTES", "shape": [1],
             "parameters": {"content_type": "base64"},
             "data": [base64.b64encode(photos["coffee"]).decode()]}
    answered = app.post(url, json={"inputs": [image], "outputs": [{"name": "answer"}]})
    assert answered.status_code == 200, answered.text
    (output,) = answered.json()["outputs"]
    assert json.loads(output["data"][0])["labels"][0]["label"] == "espresso"
