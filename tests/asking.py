"""Asking the core in process, for tests that read the answer as clients see it (its JSON)."""

from __future__ import annotations

from typing import Any

from argus.contracts import AskOptions
from argus.core import Core


async def ask_json(
    core: Core, question: str, data: bytes, options: AskOptions | None = None
) -> dict[str, Any]:
    return (await core.ask(question, data, options)).to_json()
