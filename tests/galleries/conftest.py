"""A home with the default models pulled and a core over it, shared by a module's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from argus.core import Core
from argus.server import local_core
from argus.settings import Settings
from tests.conftest import copy_home


@pytest.fixture(scope="module")
def who_home(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(pulled_home, tmp_path_factory.mktemp("who") / "home")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def core(who_home: Path, loop: asyncio.AbstractEventLoop) -> Iterator[Core]:
    core = local_core(Settings(home=who_home))
    yield core
    loop.run_until_complete(core.close())
