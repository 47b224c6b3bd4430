"""Servers with a raised and a lowered image byte limit, and a 30 MB PNG (subprocesses); a gRPC
server in process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc.aio
import numpy as np
import pytest
from PIL import Image

from argus.db.engine import make_engine
from argus.grpc.server import build_server
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.server import Parts, ServeOptions, build_parts
from argus.settings import Settings
from tests.inprocess import LoopThread, copy_home, running_loop
from tests.roles import Served, serve

MB = 1024 * 1024
RAISED_LIMIT = 40 * MB
LOWER_LIMIT = 5 * MB


@pytest.fixture(scope="session")
def big_png() -> bytes:
    """A real photo, enlarged and grained until its PNG is over 30 MB (noise does not
    compress), so the answer still says what the photo shows."""
    import skimage.data

    photo = Image.fromarray(skimage.data.coffee()).resize((4500, 3000), Image.Resampling.BICUBIC)
    rgb = np.asarray(photo).astype(np.int16)
    grain = np.random.default_rng(3).integers(-32, 33, size=rgb.shape, dtype=np.int16)
    noisy = np.clip(rgb + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    if len(data) < 30 * MB:
        raise RuntimeError(f"the test PNG is only {len(data):,} bytes")
    return data


@pytest.fixture(scope="module")
def raised(pulled_home: Path) -> Iterator[Served]:
    # The 13.5 MP PNG is over the default question budget (non-JPEG pixels count three times).
    env = {"ARGUS_MAX_IMAGE_BYTES": str(RAISED_LIMIT), "ARGUS_QUESTION_PIXELS": "50000000"}
    served = serve(pulled_home, env=env)
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def lowered(pulled_home: Path) -> Iterator[Served]:
    served = serve(pulled_home, env={"ARGUS_MAX_IMAGE_BYTES": str(LOWER_LIMIT)})
    try:
        yield served
    finally:
        served.stop()


# --- in process: a grpc.aio server on this process's own event loop ----------------------------

#: The image byte limit of the in-process server.
IN_PROCESS_LIMIT = 100_000
#: An application registered in the in-process server's home.
APP = "shop"


@pytest.fixture(scope="package")
def loop() -> Iterator[LoopThread]:
    with running_loop() as running:
        yield running


@dataclass
class InProcess:
    """A role's gRPC server on 127.0.0.1 in this process, with its parts (core, plane)."""

    parts: Parts
    server: grpc.aio.Server
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_grpc(loop: LoopThread, settings: Settings, opts: ServeOptions, load: bool = True,
               vision: bool = True) -> InProcess:
    """The parts of ``opts.role`` and their gRPC server on a free port, the Vision service
    too when ``vision``; with ``load``, the role's models loaded before this returns."""
    parts = build_parts(opts, settings)

    async def start() -> InProcess:
        server, port = build_server(
            "127.0.0.1:0", plane=parts.plane, metrics=parts.metrics, tokens=parts.tokens,
            max_image_bytes=settings.max_image_bytes, core=parts.core if vision else None,
        )
        await server.start()
        if load:
            await parts.load(opts)
        return InProcess(parts, server, port)

    return loop.run(start())


def stop_grpc(loop: LoopThread, served: InProcess) -> None:
    loop.run(served.server.stop(0))
    loop.run(served.parts.core.close())


@pytest.fixture(scope="package")
def grpc_home(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the pulled home with the app ``shop``."""
    home = copy_home(pulled_home, tmp_path_factory.mktemp("grpc") / "home")
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    try:
        ModelRegistry(engine, PackageStore(settings.packages_dir)).add_app(APP, actor="tests")
    finally:
        engine.dispose()
    return home


@pytest.fixture(scope="package")
def in_process(grpc_home: Path, loop: LoopThread) -> Iterator[InProcess]:
    """The all-in-one role's gRPC server (Vision and v2 inference), models loaded."""
    served = start_grpc(loop, Settings(home=grpc_home, max_image_bytes=IN_PROCESS_LIMIT),
                        ServeOptions())
    try:
        yield served
    finally:
        stop_grpc(loop, served)
