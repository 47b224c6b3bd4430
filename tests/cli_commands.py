"""How the tests start Argus subcommands as a user would (``argus worker …``)."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

ARGUS = str(Path(sys.executable).with_name("argus"))


@cache
def _registered() -> str:
    return subprocess.run([ARGUS, "--help"], capture_output=True, text=True, timeout=60).stdout


def argus(command: str) -> list[str]:
    """``[argus, command]``; falls back to the command's own module while the top-level
    ``argus`` app does not list it yet."""
    if re.search(rf"^\W*{command}\s", _registered(), re.MULTILINE):
        return [ARGUS, command]
    return [sys.executable, "-m", f"argus.cli.{command}"]
