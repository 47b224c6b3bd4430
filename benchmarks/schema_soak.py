"""The OpenAPI conformance run of tests/http/test_openapi_conformance.py, with many more
examples and a fresh seed each time (issue 15): schemathesis, every check, against a real
`argus serve` on loopback, once with no token and once with admin and inference tokens.

    python benchmarks/schema_soak.py [--examples 300] [--seed N] [--home DIR]   # make schema-soak

Each run prints its operations, test cases, failures, seconds and seed; the exit status is
non-zero if any run found a failure (its report is printed). The server needs the default
models: ``--home`` must have them pulled, or a temporary home is made and pulled (cheap when
the conversion is cached).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).resolve().parents[1] / "tests" / "http" / "schemathesis.toml"
ADMIN = "adm-soak-41c2"
INFER = "inf-soak-9d0e"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(home: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full = {**os.environ, "ARGUS_HOME": str(home), **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "argus"), "serve", "--port", str(port), "--grpc-port", str(free_port()),
             "--log-level", "warning"],
            env=full, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"argus serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("argus serve was not ready in 120 s")


def soak(name: str, home: Path, work: Path, env: dict[str, str], headers: list[str],
         examples: int, seed: int) -> bool:
    run_home = work / f"home-{name}"  # the run moves aliases and deletes versions: a copy
    shutil.copytree(home, run_home, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    proc, url = serve(run_home, env, work / f"server-{name}.log")
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(BIN / "st"), "--config-file", str(CONFIG), "--no-color", "run",
             f"{url}/openapi.json", "--checks", "all", "--max-examples", str(examples),
             "--workers", "1", "--continue-on-failure", "--request-timeout", "60",
             "--seed", str(seed), *headers],
            cwd=work, capture_output=True, text=True,
        )
    finally:
        proc.terminate()
        proc.wait(30)
    seconds = time.monotonic() - started
    report = result.stdout + result.stderr
    tested = re.search(r"Tested: (\d+)", report)
    cases = re.search(r"(\d+) generated, (.*)", report)
    print(f"{name:>7}: {tested.group(1) if tested else '?'} operations, "
          f"{cases.group(0) if cases else 'no test cases'}; {seconds:.0f} s; seed {seed}; "
          f"exit {result.returncode}")
    if result.returncode != 0:
        print(report[-30000:])
    return result.returncode == 0


def pulled_home(work: Path) -> Path:
    home = work / "pulled"
    env = {**os.environ, "ARGUS_HOME": str(home)}
    subprocess.run([str(BIN / "argus"), "models", "pull"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh one")
    parser.add_argument("--home", type=Path, default=None, help="an ARGUS_HOME with models")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with tempfile.TemporaryDirectory(prefix="argus-soak-") as tmp:
        work = Path(tmp)
        home = args.home or pulled_home(work)
        runs = [
            ("open", {}, []),
            ("tokens", {"ARGUS_ADMIN_TOKENS": ADMIN, "ARGUS_INFER_TOKENS": INFER},
             ["-H", f"Authorization: Bearer {ADMIN}"]),
        ]
        ok = [soak(name, home, work, env, headers, args.examples, seed)
              for name, env, headers in runs]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
