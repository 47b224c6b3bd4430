"""Servers with a raised and a lowered image byte limit, and a 30 MB PNG."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    served = serve(pulled_home, env={"ARGUS_MAX_IMAGE_BYTES": str(RAISED_LIMIT)})
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
