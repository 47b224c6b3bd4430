"""The ``argus`` command: one program, several roles."""

from __future__ import annotations

import sys

from argus.cli.app import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
