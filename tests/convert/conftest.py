"""The pinned weights and the torch reference networks, once per run (torch: dev extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CACHE_DIR = Path.home() / ".cache" / "argus"


@pytest.fixture(scope="session")
def torch_module() -> Any:
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def efficientnet_torch(torch_module: Any) -> Any:
    from tests.convert.reference import efficientnet_torch

    torch_module.set_num_threads(1)
    return efficientnet_torch(CACHE_DIR)


@pytest.fixture(scope="session")
def mtcnn_torch(torch_module: Any) -> dict[str, Any]:
    from tests.convert.reference import mtcnn_torch

    return mtcnn_torch(CACHE_DIR)


@pytest.fixture(scope="session")
def mediapipe_tflite() -> dict[str, bytes]:
    """The four pinned ``.tflite`` members of the mediapipe wheel, by member name."""
    from argus.convert import mediapipe

    return {m.name: mediapipe.read_tflite(m, CACHE_DIR) for m in mediapipe.MEMBERS}


@pytest.fixture(scope="session")
def converted(mediapipe_tflite: dict[str, bytes]) -> dict[str, Any]:
    """Each member converted to ONNX once per run (onnx.ModelProto by member name)."""
    from argus.convert import mediapipe, tflite

    return {
        m.name: tflite.convert(mediapipe_tflite[m.name], m.name, size_step=m.size_step)
        for m in mediapipe.MEMBERS
    }
