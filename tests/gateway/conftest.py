"""A gateway and two model services as separate processes on loopback ports.

The labels model has two upstreams: a port where nothing listens, then the real service, so
every call that meets the dead one first must be retried on the other."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.roles import Served, serve

LABELS = "efficientnet-lite0"
FACES = "mtcnn"


@dataclass
class Microservices:
    home: Path
    labels: Served
    faces: Served
    gateway: Served
    dead: str

    def start_faces(self) -> None:
        self.faces = model_service(self.home, FACES, grpc_port=self.faces.grpc_port)


def model_service(home: Path, model: str, grpc_port: int | None = None) -> Served:
    return serve(home, "--role", "model", "--models", model, grpc_port=grpc_port)


@pytest.fixture(scope="module")
def micro(pulled_home: Path) -> Iterator[Microservices]:
    labels = model_service(pulled_home, LABELS)
    faces = model_service(pulled_home, FACES)
    dead = f"127.0.0.1:{free_port()}"
    gateway = serve(
        pulled_home,
        "--role", "gateway",
        "--upstream", f"{LABELS}={dead}",
        "--upstream", f"{LABELS}={labels.grpc_target}",
        "--upstream", f"{FACES}={faces.grpc_target}",
    )
    services = Microservices(pulled_home, labels, faces, gateway, dead)
    try:
        yield services
    finally:
        for served in (services.gateway, services.labels, services.faces):
            served.stop()
