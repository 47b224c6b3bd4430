"""argus.kserve.dataplane in process: which version a KServe call names, and a refused package
answered as the image API answers it (503 with the reason), not as a bad request."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from argus.contracts import MAX_VERSION
from argus.errors import NotFound
from argus.kserve.dataplane import version_ref
from argus.server import in_process_app
from argus.settings import Settings
from tests.graphs.conftest import register_tint
from tests.records.test_records import GREEN


def test_a_version_is_a_number_an_alias_or_the_default() -> None:
    assert version_ref("m", "") == (None, None)
    assert version_ref("m", "3") == (3, None)
    assert version_ref("m", "canary") == (None, "canary")
    assert version_ref("m", "¹") == (None, "¹")  # a digit to str.isdigit, not to int()
    with pytest.raises(NotFound, match="no version 0"):
        version_ref("m", "0")
    with pytest.raises(NotFound, match=f"no version {MAX_VERSION + 1}"):
        version_ref("m", str(MAX_VERSION + 1))


def infer_body(image: bytes) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "parameters": {"content_type": "base64"},
                "data": [base64.b64encode(image).decode()],
            }
        ]
    }


def test_a_refused_package_is_503_with_the_reason_on_every_path(tmp_path: Path) -> None:
    tint = register_tint(tmp_path)
    (tint.path / "model.onnx").write_bytes(b"not the model that was registered")
    app = in_process_app(Settings(home=tmp_path, preload=False))

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://argus") as client:
            on_demand = await client.post("/v2/models/tint/infer", json=infer_body(GREEN))
            asked = await client.post("/v1/questions/tint", content=GREEN)  # now remembered
            remembered = await client.post(
                "/v2/models/tint/versions/1/infer", json=infer_body(GREEN)
            )
        await app.state.core.close()
        return [on_demand, asked, remembered]

    on_demand, asked, remembered = asyncio.run(main())
    reason = "model tint version 1 is refused: package tint: file model.onnx was modified"
    for response in (on_demand, asked, remembered):
        assert response.status_code == 503, response.text
        assert response.json()["error"].startswith(reason)


def test_malformed_versions_are_refused_before_the_registry(tmp_path: Path) -> None:
    register_tint(tmp_path)
    app = in_process_app(Settings(home=tmp_path, preload=False))

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://argus") as client:
            return [
                await client.get(f"/v2/models/tint/versions/{version}")
                for version in ("%C2%B9", "0", "9999999999", "1", "beta")
            ]

    superscript, zero, huge, one, alias = asyncio.run(main())
    assert superscript.status_code == 422  # was a 500: int("¹") raised
    assert zero.status_code == 422
    assert huge.status_code == 404 and "no version 9999999999" in huge.json()["error"]
    assert one.status_code == 200 and one.json()["name"] == "tint"
    assert alias.status_code == 404 and "no alias 'beta'" in alias.json()["error"]
