"""argus.http.page in process: the web page at ``/`` with every file it loads, its weight, open
to a browser without a token, and ``GET /v1/whoami`` for each kind of token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from argus.server import in_process_app
from argus.settings import Settings
from argus.web import BUDGET_BYTES, STATIC
from tests.inprocess import AppClient, LoopThread

ADMIN = "adm-page-71c0"
INFER = "inf-page-3e9a"
REFERENCE = re.compile(r'(?:href|src)="(/ui/[^"]+)"')
IMPORT = re.compile(r'^import\s+(?:[^"\']*\s+from\s+)?["\'](\./[^"\']+)["\'];', re.M)


@pytest.fixture(scope="module")
def open_app(http_home: Path, loop: LoopThread) -> Iterator[AppClient]:
    """The all-in-one app without tokens (models not loaded: nothing is asked)."""
    client = AppClient(in_process_app(Settings(home=http_home, preload=False)), loop)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def tokened_app(http_home: Path, loop: LoopThread) -> Iterator[AppClient]:
    settings = Settings(home=http_home, preload=False, admin_tokens=ADMIN, infer_tokens=INFER)
    client = AppClient(in_process_app(settings), loop)
    try:
        yield client
    finally:
        client.close()


def modules_of(text: str) -> list[str]:
    return IMPORT.findall(text)


def test_the_page_and_every_file_it_loads(open_app: AppClient) -> None:
    page = open_app.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    assets = REFERENCE.findall(page.text)
    assert "/ui/js/main.js" in assets and "/ui/app.css" in assets
    kinds = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    seen: set[str] = set()
    queue = list(assets)
    while queue:  # every module the page imports, transitively, is served as JavaScript
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        r = open_app.get(path)
        assert r.status_code == 200, path
        assert kinds[Path(path).suffix] in r.headers["content-type"], path
        if path.endswith(".js"):
            folder = path.rsplit("/", 1)[0]
            queue += [f"{folder}/{m[2:]}" for m in modules_of(r.text)]
    shipped = {f"/ui/{p.relative_to(STATIC).as_posix()}" for p in STATIC.rglob("*") if p.is_file()}
    assert shipped - {"/ui/index.html"} == seen  # no file left that nothing loads
    assert open_app.get("/ui/js/nothing.js").status_code == 404


def test_the_page_weighs_under_its_budget() -> None:
    total = sum(p.stat().st_size for p in STATIC.rglob("*") if p.is_file())
    assert 20_000 < total < BUDGET_BYTES


def test_every_element_the_scripts_look_up_by_id_exists() -> None:
    """``$("#x")`` in a module names an element of index.html (or one a module makes)."""
    html = (STATIC / "index.html").read_text()
    scripts = "\n".join(p.read_text() for p in (STATIC / "js").glob("*.js"))
    wanted = set(re.findall(r'\$\("#([\w-]+)"\)', scripts))
    made = set(re.findall(r'id: "([\w-]+)"', scripts))
    assert len(wanted) > 40
    missing = {i for i in wanted - made if f'id="{i}"' not in html}
    assert missing == set()


def test_whoami_without_tokens(open_app: AppClient) -> None:
    me = open_app.get("/v1/whoami").json()
    assert me == {"token": "none", "ask": True, "manage": True, "tokens_required": False,
                  "version": me["version"]}
    anything = open_app.get("/v1/whoami", headers={"Authorization": "Bearer whatever"}).json()
    assert anything["token"] == "unknown" and anything["manage"] is True


def test_with_tokens_the_page_is_open_and_whoami_tells_each_token(tokened_app: AppClient) -> None:
    for path in ("/", "/ui/js/main.js", "/ui/app.css"):
        assert tokened_app.get(path).status_code == 200, path
    assert tokened_app.get("/v1/models").status_code == 401  # nothing else opened

    def whoami(token: str | None) -> tuple[str, bool, bool]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        me = tokened_app.get("/v1/whoami", headers=headers).json()
        assert me["tokens_required"] is True
        return me["token"], me["ask"], me["manage"]

    assert whoami(None) == ("none", False, False)
    assert whoami("nope") == ("unknown", False, False)
    assert whoami(INFER) == ("infer", True, False)
    assert whoami(ADMIN) == ("admin", True, True)


def test_whoami_is_in_the_openapi_document(open_app: AppClient) -> None:
    schema = open_app.get("/openapi.json").json()
    get = schema["paths"]["/v1/whoami"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Whoami"}
    fields = schema["components"]["schemas"]["Whoami"]["properties"]
    assert set(fields) == {"token", "ask", "manage", "tokens_required", "version"}
    assert "/" not in schema["paths"]  # the page itself is no API
