"""The API documentation works offline and says what the API takes and answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from argus.server import in_process_app
from argus.settings import Settings


def get(tmp_path: Path, *paths: str) -> list[httpx.Response]:
    app = in_process_app(Settings(home=tmp_path, preload=False))

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://argus") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(main())


def test_docs_load_nothing_from_the_internet(tmp_path: Path) -> None:
    page, script, css = get(tmp_path, "/docs", "/docs/assets/swagger-ui-bundle.js",
                            "/docs/assets/swagger-ui.css")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert css.status_code == 200 and ".swagger-ui" in css.text


def test_the_image_api_documents_its_options_and_errors(tmp_path: Path) -> None:
    (spec,) = get(tmp_path, "/openapi.json")
    ask = spec.json()["paths"]["/v1/questions/{question}"]["post"]
    query = {p["name"]: p for p in ask["parameters"] if p["in"] == "query"}
    assert set(query) == {"top_k", "conf", "crops", "version", "alias", "app", "record",
                          "keep_uncertain", "gallery"}
    assert all(p["description"] for p in query.values())
    assert {"400", "403", "404", "413", "415", "503"} <= set(ask["responses"])
    error = ask["responses"]["413"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
