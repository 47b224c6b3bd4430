"""A home with the tiny classifier (a real ONNX model: mean colour → 4 classes), calibration
folders good (the sample photos) and bad (flat grey: every activation range collapses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from tests.tiny_model import register_tiny


def open_registry(home: Path) -> ModelRegistry:
    engine = make_engine(Settings(home=home).db_url)
    migrate(engine)
    return ModelRegistry(engine, PackageStore(Settings(home=home).packages_dir))


@pytest.fixture
def tiny_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    register_tiny(Settings(home=home), tmp_path / "tiny-src")
    return home


@pytest.fixture
def tiny_registry(tiny_home: Path) -> Iterator[ModelRegistry]:
    registry = open_registry(tiny_home)
    yield registry
    registry.engine.dispose()


@pytest.fixture
def grey_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "grey"
    folder.mkdir()
    for n in range(3):
        Image.fromarray(np.full((40, 40, 3), 127, np.uint8)).save(folder / f"grey{n}.png")
    return folder
