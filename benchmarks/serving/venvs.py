"""One virtual environment per peer, installed from PyPI on first use and kept between runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

STAMP = ".bench-requirements"


def ensure_venv(root: Path, name: str, requirements: list[str]) -> Path:
    """The venv directory, (re)created when its requirement list changed since the last run."""
    venv = root / name
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    stamp = venv / STAMP
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    print(f"  installing {name} venv: {' '.join(requirements)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log = venv / "pip-install.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"pip install for the {name} venv failed:\n{tail}")
    stamp.write_text(wanted)
    return venv


def installed_versions(venv: Path, distributions: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *distributions],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    versions: dict[str, str] = json.loads(out)
    return versions
