"""Token rules (argus.auth): parsing, scopes, checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from argus.auth import Scope, Tokens, bearer, grpc_scope, http_scope, parse_tokens
from argus.errors import ConfigError, Forbidden, Unauthorized
from argus.settings import Settings


def test_tokens_from_a_list_or_a_file(tmp_path: Path) -> None:
    assert parse_tokens(" a, b ,,c ", "X") == (b"a", b"b", b"c")
    assert parse_tokens("", "X") == ()
    path = tmp_path / "tokens"
    path.write_text("# admins\nfirst\n\n  second  # the deploy bot\n")
    assert parse_tokens(f"@{path}", "X") == (b"first", b"second")
    with pytest.raises(ConfigError, match="ARGUS_ADMIN_TOKENS names the token file"):
        parse_tokens(f"@{tmp_path / 'missing'}", "ARGUS_ADMIN_TOKENS")
    with pytest.raises(ConfigError, match="holds no token"):
        parse_tokens(" , ", "ARGUS_INFER_TOKENS")
    settings = Settings(home=tmp_path, admin_tokens=f"@{path}", infer_tokens="i")
    assert Tokens.from_settings(settings) == Tokens(admin=(b"first", b"second"), infer=(b"i",))


def test_bearer() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc ") == "abc"
    assert bearer("abc") == "abc"
    assert bearer("Bearer ") is None
    assert bearer(None) is None


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/health/ready", Scope.OPEN),
        ("GET", "/metrics", Scope.OPEN),
        ("GET", "/docs", Scope.OPEN),
        ("GET", "/v2", Scope.INFER),
        ("POST", "/v2/models/m/infer", Scope.INFER),
        ("POST", "/v1/questions/labels", Scope.INFER),
        ("GET", "/v1/models", Scope.INFER),
        ("GET", "/v1/models/m/versions", Scope.INFER),
        ("PUT", "/v1/models/m/aliases/canary", Scope.ADMIN),
        ("POST", "/v1/models/m/promote", Scope.ADMIN),
        ("DELETE", "/v1/models/m/versions/3", Scope.ADMIN),
        ("POST", "/v1/apps", Scope.ADMIN),
        ("POST", "/v1/jobs", Scope.INFER),
        ("GET", "/v1/jobs/123", Scope.INFER),
        ("DELETE", "/v1/jobs/123", Scope.INFER),
        ("GET", "/v1/jobs", Scope.ADMIN),
        ("POST", "/v1/jobs/dead/requeue", Scope.ADMIN),
        ("GET", "/v1/galleries", Scope.ADMIN),
        ("GET", "/v1/galleries/staff", Scope.ADMIN),
        ("DELETE", "/v1/galleries/staff/people/Ada", Scope.ADMIN),
        ("POST", "/v1/galleriesque", Scope.INFER),
        ("POST", "/v1/questions/who", Scope.INFER),
    ],
)
def test_http_scopes(method: str, path: str, scope: Scope) -> None:
    assert http_scope(method, path) is scope


def test_grpc_scopes() -> None:
    assert grpc_scope("/inference.GRPCInferenceService/ServerLive") is Scope.OPEN
    assert grpc_scope("/inference.GRPCInferenceService/ModelInfer") is Scope.INFER
    assert grpc_scope("/argus.v1.Vision/Ask") is Scope.INFER


def test_checks() -> None:
    both = Tokens(admin=(b"adm",), infer=(b"inf", b"inf2"))
    both.check(Scope.OPEN, None)
    both.check(Scope.INFER, "inf2")
    both.check(Scope.INFER, "adm")
    both.check(Scope.ADMIN, "adm")
    with pytest.raises(Unauthorized, match="needs an inference or admin token"):
        both.check(Scope.INFER, None)
    with pytest.raises(Unauthorized, match="not valid"):
        both.check(Scope.INFER, "inf3")
    with pytest.raises(Forbidden, match="needs an admin token"):
        both.check(Scope.ADMIN, "inf")

    admin_only = Tokens(admin=(b"adm",))
    admin_only.check(Scope.INFER, None)  # inference stays open
    with pytest.raises(Unauthorized):
        admin_only.check(Scope.ADMIN, None)

    infer_only = Tokens(infer=(b"inf",))
    with pytest.raises(Forbidden):  # management is never left open once tokens are on
        infer_only.check(Scope.ADMIN, "inf")

    Tokens().check(Scope.ADMIN, None)  # no tokens configured: everything is open
    assert both.client_token() == "inf" and admin_only.client_token() == "adm"
    assert Tokens().client_token() is None
