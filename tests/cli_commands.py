"""How the tests start Argus subcommands as a user would (``argus worker …``)."""

from __future__ import annotations

import sys
from pathlib import Path

ARGUS = str(Path(sys.executable).with_name("argus"))


def argus(command: str) -> list[str]:
    """``[argus, command]``: the installed command, with its subcommand."""
    return [ARGUS, command]
