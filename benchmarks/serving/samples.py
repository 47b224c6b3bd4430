"""The request images: the bundled sample photos (scikit-image, scikit-learn) as 1024x768 JPEGs."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (1024, 768)
QUALITY = 90


def _sample_photos() -> dict[str, Callable[[], np.ndarray]]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    photos: dict[str, Callable[[], np.ndarray]] = {
        name: getattr(skimage.data, name) for name in ("coffee", "chelsea", "astronaut", "rocket")
    }
    for name in ("china", "flower"):
        photos[name] = partial(load_sample_image, f"{name}.jpg")
    return photos


def to_jpeg(rgb: np.ndarray) -> bytes:
    """Stretch to 1024x768 (the photos are smaller, of various shapes) and encode."""
    img = Image.fromarray(rgb).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def ensure_images(directory: Path) -> list[Path]:
    """Write the JPEGs once; later runs reuse them so every run sends the same bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, load in _sample_photos().items():
        path = directory / f"{name}.jpg"
        if not path.is_file():
            path.write_bytes(to_jpeg(load()))
        paths.append(path)
    return paths
