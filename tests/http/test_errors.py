"""argus.http.errors: every failure a REST client sees is ``{"error": reason}`` with the status
its ArgusError carries; anything unexpected is a 500 that names only the exception's type."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from argus.errors import (
    ArgusError,
    BadInput,
    BadPackage,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    Overloaded,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
)
from argus.http import errors
from tests.inprocess import AppClient, LoopThread

RAISED: dict[str, ArgusError] = {
    "bad": BadInput("top_k must be a whole number"),
    "media": UnsupportedMedia("not an image"),
    "large": TooLarge("over the limit"),
    "missing": NotFound("no question named 'x'"),
    "conflict": Conflict("moved meanwhile"),
    "unauthorized": Unauthorized("needs a token"),
    "forbidden": Forbidden("needs an admin token"),
    "unavailable": Unavailable("the model service is down"),
    "package": BadPackage("the package was tampered with"),
    "config": ConfigError("cannot work"),
}


@pytest.fixture(scope="module")
def probe(loop: LoopThread) -> Iterator[AppClient]:
    """A bare app with the error handlers installed and routes that fail on purpose."""
    app = FastAPI()
    errors.install(app)

    @app.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        raise RAISED[kind]

    @app.get("/overloaded")
    async def overloaded(retry_after: float) -> None:
        raise Overloaded("the queue is full; retry later", retry_after=retry_after)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("the secret at /srv/keys")

    @app.get("/typed")
    async def typed(count: int, size: int) -> dict[str, int]:
        return {"count": count, "size": size}

    client = AppClient(app, loop, raise_app_exceptions=False)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize(
    ("kind", "status"),
    [("bad", 400), ("media", 415), ("large", 413), ("missing", 404), ("conflict", 409),
     ("unauthorized", 401), ("forbidden", 403), ("unavailable", 503), ("package", 422),
     ("config", 500)],
)
def test_an_argus_error_answers_its_status_and_message(
    probe: AppClient, kind: str, status: int
) -> None:
    response = probe.get(f"/raise/{kind}")
    assert (response.status_code, response.json()) == (status, {"error": RAISED[kind].message})
    assert "retry-after" not in response.headers


def test_server_side_failures_are_logged_client_mistakes_are_not(
    probe: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="argus.http.errors"):
        probe.get("/raise/bad")
        probe.get("/raise/missing")
        probe.get("/overloaded", params={"retry_after": 1})
        assert caplog.messages == []
        probe.get("/raise/unavailable")
    assert caplog.messages == ["request failed: the model service is down"]


@pytest.mark.parametrize(("retry_after", "header"), [(0.2, "1"), (1.4, "1"), (2.6, "3")])
def test_overloaded_says_when_to_retry_in_whole_seconds(
    probe: AppClient, retry_after: float, header: str
) -> None:
    response = probe.get("/overloaded", params={"retry_after": retry_after})
    assert response.status_code == 503
    assert response.headers["retry-after"] == header
    assert response.json() == {"error": "the queue is full; retry later"}


def test_an_unexpected_error_is_a_500_naming_only_its_type(
    probe: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="argus.http.errors"):
        response = probe.get("/broken")
    assert (response.status_code, response.json()) == (
        500, {"error": "internal error: RuntimeError"}
    )
    assert "secret" not in response.text
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [str(exc) for exc in logged] == ["the secret at /srv/keys"]  # the log has it all


def test_framework_errors_use_the_same_shape(probe: AppClient) -> None:
    invalid = probe.get("/typed", params={"count": "many"})
    assert invalid.status_code == 422
    reasons = invalid.json()["error"].split("; ")
    assert reasons[0].startswith("query.count: ") and reasons[1].startswith("query.size: ")
    unknown = probe.get("/nowhere")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Not Found"})
    wrong = probe.request("DELETE", "/typed")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})
    assert wrong.headers["allow"] == "GET, OPTIONS"
