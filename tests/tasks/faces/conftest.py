"""MTCNN built from the pinned wheel once per run, and ONNX Runtime sessions on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from argus.tasks.faces import MTCNN

CACHE_DIR = Path.home() / ".cache" / "argus"
NETWORKS = ("pnet", "rnet", "onet")
# Where facenet-pytorch 2.6.0 puts astronaut's face (cell centre used to build the collage).
ASTRONAUT_FACE_CENTRE = (224.0, 117.0)


@pytest.fixture(scope="session")
def mtcnn_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The converter's output directory and manifest fields."""
    from argus.convert.mtcnn import build

    workdir = tmp_path_factory.mktemp("mtcnn")
    return workdir, build(workdir, CACHE_DIR)


@pytest.fixture(scope="session")
def mtcnn_sessions(mtcnn_build: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    import onnxruntime as ort

    workdir, fields = mtcnn_build
    options = ort.SessionOptions()
    # One thread: the suite shares a small machine, and results do not depend on it.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return {
        name: ort.InferenceSession(
            str(workdir / fields["models"][name]), options, providers=["CPUExecutionProvider"]
        )
        for name in NETWORKS
    }


@pytest.fixture(scope="session")
def detector(mtcnn_sessions: dict[str, Any], mtcnn_build: tuple[Path, dict[str, Any]]) -> MTCNN:
    options = mtcnn_build[1]["options"]
    return MTCNN(
        mtcnn_sessions["pnet"],
        mtcnn_sessions["rnet"],
        mtcnn_sessions["onet"],
        min_face_size=options["min_face_size"],
        thresholds=options["thresholds"],
        factor=options["factor"],
    )


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def collage(astronaut: np.ndarray) -> np.ndarray:
    """A 3x2 grid of 256-pixel cells, each a crop of astronaut scaled and shifted differently."""
    return make_collage(astronaut, cell=COLLAGE_CELL)


COLLAGE_CELL = 256


def make_collage(rgb: np.ndarray, cell: int) -> np.ndarray:
    cx, cy = ASTRONAUT_FACE_CENTRE
    layout = [
        (1.0, 0, 0),
        (0.75, -30, 20),
        (0.5, 25, -15),
        (1.25, 10, 30),
        (0.6, -20, -25),
        (0.9, 35, 5),
    ]
    out = np.zeros((2 * cell, 3 * cell, 3), np.uint8)
    height, width = rgb.shape[:2]
    for k, (scale, dx, dy) in enumerate(layout):
        size = (round(width * scale), round(height * scale))
        img = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
        x0 = int(np.clip(round(cx * scale - cell / 2 - dx), 0, max(img.shape[1] - cell, 0)))
        y0 = int(np.clip(round(cy * scale - cell / 2 - dy), 0, max(img.shape[0] - cell, 0)))
        tile = img[y0 : y0 + cell, x0 : x0 + cell]
        row, col = divmod(k, 3)
        out[row * cell : row * cell + tile.shape[0], col * cell : col * cell + tile.shape[1]] = tile
    return out
