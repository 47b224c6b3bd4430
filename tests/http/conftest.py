"""The REST app in process: the all-in-one app over a copy of the pulled home, served through
httpx's ASGI transport on one event loop that lives as long as the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from argus.core import Core
from argus.db.engine import make_engine
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.server import in_process_app
from argus.settings import Settings
from tests.inprocess import AppClient, LoopThread, copy_home, running_loop

#: An application registered in the home, without pins (it gets production versions).
APP = "shop"


@pytest.fixture(scope="package")
def loop() -> Iterator[LoopThread]:
    with running_loop() as running:
        yield running


@pytest.fixture(scope="package")
def http_home(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the pulled home (these tests write records) with the app ``shop``."""
    home = copy_home(pulled_home, tmp_path_factory.mktemp("http") / "home")
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    try:
        ModelRegistry(engine, PackageStore(settings.packages_dir)).add_app(APP, actor="tests")
    finally:
        engine.dispose()
    return home


def serve_app(settings: Settings, loop: LoopThread) -> AppClient:
    """``in_process_app(settings)`` with its lifespan entered, ready once preloaded."""
    client = AppClient(in_process_app(settings), loop)
    client.wait_ready()
    return client


@pytest.fixture(scope="package")
def app(http_home: Path, loop: LoopThread) -> Iterator[AppClient]:
    """The all-in-one app with both default models loaded."""
    client = serve_app(Settings(home=http_home), loop)
    try:
        yield client
    finally:
        client.close()


def core_of(client: AppClient) -> Core:
    core: Core = client.app.state.core
    return core


def flush_records(client: AppClient) -> None:
    """Wait until the records the app has queued are in the database."""
    client.loop.run(core_of(client).records.flush_async())
