"""Shared fixtures: real sample photos, a home with the default models pulled, real servers,
and a throw-away PostgreSQL database per run."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from argus.db.engine import make_engine, migrate
from argus.manifest import ModelPackage
from argus.models.packages import PackageStore
from argus.models.pull import pull
from argus.models.registry import ModelRegistry
from argus.settings import Settings

ARGUS = str(Path(sys.executable).with_name("argus"))
#: The models `argus models pull` installs (the tests that list models expect exactly these).
PULLED = frozenset(
    {"efficientnet-lite0", "mtcnn", "blazepose", "ppocr", "face-mesh", "sface"}
)


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """Real photos no one here made: scikit-image and scikit-learn sample images, as JPEG."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    return {
        "coffee": jpeg(skimage.data.coffee()),
        "chelsea": jpeg(skimage.data.chelsea()),
        "rocket": jpeg(skimage.data.rocket()),
        "astronaut": jpeg(skimage.data.astronaut()),
        "china": jpeg(load_sample_image("china.jpg")),
        "flower": jpeg(load_sample_image("flower.jpg")),
    }


@pytest.fixture(scope="session")
def people_photos() -> dict[str, bytes]:
    """Several photos of the same people (``tests/face_photos.py``: obama, obama2, obama3,
    biden, …), from a pinned PyPI source distribution."""
    from tests.face_photos import face_photos

    return face_photos()


@pytest.fixture(scope="session")
def photo_dir(photos: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for name, data in photos.items():
        (d / f"{name}.jpg").write_bytes(data)
    return d


@pytest.fixture(scope="session")
def pulled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ARGUS_HOME with the default models pulled (conversion cached by the pull itself)."""
    home = tmp_path_factory.mktemp("argus-home")
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
    results = pull(registry, settings.cache_dir)
    engine.dispose()
    names = {v.name for v, _ in results}
    if names != PULLED:
        raise RuntimeError(f"pull installed {names}")
    return home


def wait_for_job(
    url: str,
    job_id: str,
    timeout: float = 120,
    watch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """``GET /v1/jobs/{job_id}`` until the job is done, dead or cancelled (each look handed to
    ``watch``); an AssertionError if it is still queued or running after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
        if watch is not None:
            watch(job)
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout:g} s: {job}")


def pulled_package(home: Path, name: str) -> ModelPackage:
    """The package of model ``name``'s production version in a pulled home."""
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    try:
        store = PackageStore(settings.packages_dir)
        return store.load(ModelRegistry(engine, store).resolve(name).digest)
    finally:
        engine.dispose()


def copy_home(pulled_home: Path, dest: Path) -> Path:
    """A private copy of the pulled home at ``dest``, that a test may change."""
    import shutil

    shutil.copytree(pulled_home, dest, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    return dest


@pytest.fixture
def home_copy(pulled_home: Path, tmp_path: Path) -> Path:
    """A private copy of the pulled home that a test may change."""
    return copy_home(pulled_home, tmp_path / "home")


@contextlib.contextmanager
def serving_with_worker(home: Path, log_level: str = "info") -> Iterator[ServerProcess]:
    """`argus serve` and an `argus worker` beside it on ``home``, as `make run` starts them:
    jobs (and training) submitted to the server are answered."""
    from tests.cli_commands import argus

    server = start_server(home)
    worker = subprocess.Popen(
        [*argus("worker"), "--concurrency", "2", "--log-level", log_level],
        env={**os.environ, "ARGUS_HOME": str(home)},
        stdout=(home / "worker.log").open("ab"), stderr=subprocess.STDOUT,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, args: list[str], env: dict[str, str], url: str) -> None:
        self.url = url
        self.home = Path(env["ARGUS_HOME"])
        self.log = open(  # noqa: SIM115 - closed in stop()
            Path(env["ARGUS_HOME"]) / f"server-{uuid.uuid4().hex[:6]}.log", "w+"
        )
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_server(home: Path, *extra: str, env: dict[str, str] | None = None) -> ServerProcess:
    port = free_port()
    full_env = {**os.environ, "ARGUS_HOME": str(home), **(env or {})}
    grpc = [] if "--grpc-port" in extra else ["--grpc-port", str(free_port())]
    args = [ARGUS, "serve", "--port", str(port), "--log-level", "warning", *grpc, *extra]
    server = ServerProcess(args, full_env, f"http://127.0.0.1:{port}")
    return server


@pytest.fixture(scope="session")
def server(pulled_home: Path) -> Iterator[ServerProcess]:
    """`argus serve` on a free loopback port, over the pulled home."""
    srv = start_server(pulled_home)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get("ARGUS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ARGUS_TEST_POSTGRES_URL is not set (CI sets it)")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(postgres_server_url)
    name = f"argus_test_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'argus.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(autouse=True, scope="session")
def _tritonclient_http_closes_once() -> Iterator[None]:
    """tritonclient.http's ``__del__`` closes its gevent pool again; when the garbage collector
    runs it during a later test (another thread's hub), gevent raises there. Our tests close
    their clients explicitly, so the destructor's second close is dropped."""
    try:
        from tritonclient.http import InferenceServerClient
    except ImportError:
        yield
        return
    original = InferenceServerClient.__del__
    InferenceServerClient.__del__ = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        InferenceServerClient.__del__ = original  # type: ignore[method-assign]
