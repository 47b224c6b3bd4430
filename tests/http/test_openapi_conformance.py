"""The OpenAPI document is the API, checked from outside: schemathesis runs every operation of
a real server on loopback with all its checks (no server error, statuses, content types and
bodies as documented, schema-valid requests accepted and invalid ones refused, Allow headers,
auth not ignored), once with no token configured and once with admin and inference tokens,
sending the admin token. Bounded here; ``make schema-soak`` runs many more examples."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import start_server

ST = str(Path(sys.executable).with_name("st"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
ADMIN = "adm-conformance-5e1f"
INFER = "inf-conformance-0b7c"
#: Enough to meet every operation's coverage cases and a few fuzzed ones, in seconds per run.
EXAMPLES = 8
SEED = 20260115


def schemathesis(
    url: str, work: Path, *extra: str, examples: int = EXAMPLES, seed: int | None = SEED
) -> subprocess.CompletedProcess[str]:
    """``st run`` over the server's own document, every check, failures all reported."""
    args: list[str] = [
        ST, "--config-file", str(CONFIG), "--no-color", "run", f"{url}/openapi.json",
        "--checks", "all", "--max-examples", str(examples), "--workers", "1",
        "--continue-on-failure", "--request-timeout", "60", *extra,
    ]
    if seed is not None:
        args += ["--seed", str(seed)]
    return subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600)


def run_against(home: Path, work: Path, env: dict[str, str], headers: Sequence[str]) -> str:
    server = start_server(home, env=env)
    try:
        server.wait_ready()
        result = schemathesis(server.url, work, *headers)
    finally:
        server.stop()
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-20000:]
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", report)
    assert selected is not None, report[-5000:]
    chosen, total, tested = map(int, selected.groups())
    assert chosen == total == tested >= 30, selected.group(0)  # every operation ran
    return report


@pytest.mark.slow
def test_no_token(home_copy: Path, tmp_path: Path) -> None:
    run_against(home_copy, tmp_path, {}, [])


@pytest.mark.slow
def test_admin_and_inference_tokens(home_copy: Path, tmp_path: Path) -> None:
    env = {"ARGUS_ADMIN_TOKENS": ADMIN, "ARGUS_INFER_TOKENS": INFER}
    run_against(home_copy, tmp_path, env, ["-H", f"Authorization: Bearer {ADMIN}"])
