"""The ``argus`` command stays light: its help loads no inference runtime, web stack or
database, and the registry commands no runtime (the whole stack took ~1.5 s before each
command). Each check runs in a fresh interpreter: this test process has imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ARGUS

# What the CLI must not load before a command needs it (seconds of start-up between them).
RUNTIMES = ("onnxruntime", "onnx", "openvino", "torch", "numpy", "cv2")
SERVING = ("fastapi", "uvicorn", "grpc", "prometheus_client")
DATABASE = ("sqlalchemy", "alembic")

RUN_CLI = """
import json, sys
from argus.cli import main
sys.argv = ["argus", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\nloaded:", json.dumps([code, sorted(m for m in sys.modules if "." not in m)]))
"""


def loaded_by(args: list[str], home: Path) -> tuple[int, set[str]]:
    """The exit code of ``argus ARGS`` and the top-level modules it had loaded at the end."""
    env = {**os.environ, "ARGUS_HOME": str(home)}
    env.pop("ARGUS_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", RUN_CLI, *args], env=env, capture_output=True,
                          text=True, timeout=60)
    last = done.stdout.rstrip().rpartition("\nloaded: ")[2]
    assert last != done.stdout.rstrip(), (done.stdout, done.stderr)
    code, modules = json.loads(last)
    return code, set(modules)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["models", "--help"], ["serve", "--help"], ["ask", "--help"],
     ["jobs", "submit", "--help"], ["worker", "--help"], ["ingest", "--help"],
     ["gallery", "--help"], ["gallery", "enrol", "--help"]],
)
def test_help_loads_no_runtime_web_stack_or_database(args: list[str], tmp_path: Path) -> None:
    code, modules = loaded_by(args, tmp_path)
    assert code == 0
    assert "typer" in modules  # the probe sees what was imported
    assert modules.isdisjoint(RUNTIMES + SERVING + DATABASE), modules & {
        *RUNTIMES, *SERVING, *DATABASE}


def test_models_list_loads_the_database_but_no_runtime(tmp_path: Path) -> None:
    code, modules = loaded_by(["models", "list", "--json"], tmp_path)
    assert code == 0
    assert "sqlalchemy" in modules
    assert modules.isdisjoint(RUNTIMES + SERVING), modules & {*RUNTIMES, *SERVING}


def test_models_add_help_names_every_task(tmp_path: Path) -> None:
    from argus.tasks import TASKS

    env = {**os.environ, "ARGUS_HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run([ARGUS, "models", "add", "--help"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"One of {', '.join(TASKS)}" in done.stdout
