"""The OpenAPI document is the API: errors in one shape, the tokens this server was started
with declared where they are needed, and every path's methods named by OPTIONS and 405."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from argus.server import in_process_app
from argus.settings import Settings

ADMIN = "adm-3c1d"
INFER = "inf-9a7e"


def requests(
    home: Path, calls: list[tuple[str, str, str | None]], **settings: Any
) -> list[httpx.Response]:
    """``(method, path, token)`` calls to the all-in-one app over ``home`` (nothing loaded)."""
    app = in_process_app(Settings(home=home, preload=False, **settings))

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://argus") as client:
            return [
                await client.request(
                    method, path, headers={"Authorization": f"Bearer {token}"} if token else {}
                )
                for method, path, token in calls
            ]

    return asyncio.run(main())


def document(home: Path, **settings: Any) -> dict[str, Any]:
    (spec,) = requests(home, [("GET", "/openapi.json", None)], **settings)
    assert spec.status_code == 200
    doc: dict[str, Any] = spec.json()
    return doc


def operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
    }


def test_every_error_has_one_shape_and_503_is_everywhere(tmp_path: Path) -> None:
    doc = document(tmp_path)
    ops = operations(doc)
    assert len(ops) >= 30
    for name, operation in ops.items():
        responses = operation["responses"]
        assert "503" in responses, name
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (name, status)
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ErrorBody" in schemas


def test_without_tokens_nothing_declares_a_token(tmp_path: Path) -> None:
    doc = document(tmp_path)
    for name, operation in operations(doc).items():
        assert "security" not in operation, name
        assert "401" not in operation["responses"], name
    assert "securitySchemes" not in doc["components"]


def test_with_tokens_each_operation_declares_what_it_needs(tmp_path: Path) -> None:
    ops = operations(document(tmp_path, admin_tokens=ADMIN, infer_tokens=INFER))
    bearer = [{"bearer": []}]
    promote = ops["POST /v1/models/{name}/promote"]
    assert promote["security"] == bearer and {"401", "403"} <= set(promote["responses"])
    ask = ops["POST /v1/questions/{question}"]
    assert ask["security"] == bearer and "401" in ask["responses"]
    # Any valid token may ask; a gallery of another app, or the raw embed answer to an
    # inference token, is refused (403), which the image API documents.
    assert "403" in ask["responses"]
    records = ops["GET /v1/records"]
    assert records["security"] == bearer and "403" in records["responses"]
    for name in ("GET /v2/health/live", "GET /v2/health/ready", "GET /metrics"):
        assert "security" not in ops[name] and "401" not in ops[name]["responses"], name


def test_with_admin_tokens_only_inference_stays_open(tmp_path: Path) -> None:
    ops = operations(document(tmp_path, admin_tokens=ADMIN))
    assert "security" not in ops["POST /v1/questions/{question}"]
    promote = ops["POST /v1/models/{name}/promote"]
    assert promote["security"] == [{"bearer": []}]
    assert "403" not in promote["responses"]  # no inference token exists to be refused


def test_options_and_405_name_every_method_of_the_path(tmp_path: Path) -> None:
    options, wrong, listed, unknown = requests(
        tmp_path,
        [
            ("OPTIONS", "/v1/models/m/versions/1", None),
            ("PATCH", "/v1/models/m/versions/1", None),
            ("OPTIONS", "/v1/jobs", None),
            ("OPTIONS", "/v1/nowhere", None),
        ],
    )
    assert options.status_code == 204 and options.content == b""
    assert options.headers["allow"] == "DELETE, GET, OPTIONS"
    assert wrong.status_code == 405 and wrong.headers["allow"] == "DELETE, GET, OPTIONS"
    assert wrong.json() == {"error": "Method Not Allowed"}
    assert listed.headers["allow"] == "GET, OPTIONS, POST"
    assert unknown.status_code == 404


def test_options_needs_no_token(tmp_path: Path) -> None:
    options, delete = requests(
        tmp_path,
        [("OPTIONS", "/v1/apps/shop", None), ("DELETE", "/v1/apps/shop", None)],
        admin_tokens=ADMIN,
    )
    assert options.status_code == 204 and options.headers["allow"] == "DELETE, GET, OPTIONS, POST"
    assert delete.status_code == 401


@pytest.mark.postgres
def test_a_nul_in_free_text_is_refused_before_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL holds no NUL in a text value: a filter or id carrying one was a 500 there."""
    responses = requests(
        tmp_path,
        [
            ("GET", "/v1/records?question=a%00b", None),
            ("GET", "/v1/jobs?before=job%00", None),
            ("GET", "/v1/jobs/job_%00", None),
            ("DELETE", "/v1/jobs/job_%00", None),
            ("GET", "/v1/records?app=shop", None),
        ],
        database_url=postgres_url,
    )
    assert [r.status_code for r in responses] == [422, 422, 422, 422, 200]
