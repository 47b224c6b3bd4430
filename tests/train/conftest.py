"""Small real training data: scikit-learn's bundled digits (8x8 greyscale scans) and crops of
scikit-image's coffee and cat photos, written as image files in class folders."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings


def write_digits(root: Path, classes: tuple[int, ...], per_class: int, offset: int = 0) -> Path:
    """``root/<digit>/<n>.png``: the first ``per_class`` scans of each digit after ``offset``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in classes:
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        picks = np.flatnonzero(digits.target == label)[offset : offset + per_class]
        for i in picks:
            grey = (digits.images[i] * (255 / 16)).astype(np.uint8)
            Image.fromarray(grey).save(folder / f"{i:04d}.png")
    return root


def crops(rgb: np.ndarray, count: int, seed: int) -> list[bytes]:
    """Random crops (half to full size) of one photo, as JPEG: the augmented set seed 002's
    coffee-or-cat story starts from."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.uniform(0.5, 1.0) * min(h, w))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        buf = io.BytesIO()
        Image.fromarray(rgb[y : y + side, x : x + side]).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def write_coffee_or_cat(root: Path, per_class: int, seed: int = 0) -> Path:
    import skimage.data

    for label, rgb in (("coffee", skimage.data.coffee()), ("cat", skimage.data.chelsea())):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for n, data in enumerate(crops(rgb, per_class, seed)):
            (folder / f"{label}-{seed}-{n}.jpg").write_bytes(data)
    return root


@pytest.fixture(scope="session")
def coffee_or_cat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_coffee_or_cat(tmp_path_factory.mktemp("coffee-or-cat"), 8)


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits"), (0, 1, 7), 10)


@pytest.fixture
def train_home(home_copy: Path) -> Path:
    return home_copy


def open_registry(home: Path) -> tuple[ModelRegistry, Settings]:
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    return ModelRegistry(engine, PackageStore(settings.packages_dir)), settings


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
