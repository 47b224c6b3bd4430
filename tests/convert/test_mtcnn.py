"""P-, R- and O-Net written with onnx.helper against facenet-pytorch's modules in torch."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from argus.convert import mtcnn
from argus.convert.graph import ConversionError
from argus.tasks.faces import MTCNN
from tests.convert.conftest import CACHE_DIR
from tests.convert.reference import TorchSession

SHAPES = {
    "pnet": [(1, 3, 12, 12), (2, 3, 61, 40), (1, 3, 308, 308)],
    "rnet": [(1, 3, 24, 24), (17, 3, 24, 24)],
    "onet": [(1, 3, 48, 48), (9, 3, 48, 48)],
}


@pytest.fixture(scope="module")
def sessions() -> dict[str, ort.InferenceSession]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return {
        name: ort.InferenceSession(
            mtcnn.BUILDERS[name](weights).SerializeToString(),
            options,
            providers=["CPUExecutionProvider"],
        )
        for name, weights in mtcnn.state_dicts(CACHE_DIR).items()
    }


@pytest.mark.parametrize("name", mtcnn.NETWORKS)
def test_graph_matches_torch_on_random_inputs(
    name: str, sessions: dict[str, ort.InferenceSession], mtcnn_torch: dict[str, Any]
) -> None:
    rng = np.random.default_rng(5)
    reference = TorchSession(name, mtcnn_torch[name])
    for shape in SHAPES[name]:
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        got = sessions[name].run(None, {"input": x})
        expected = reference.run(None, {"input": x})
        assert [o.name for o in sessions[name].get_outputs()] == list(mtcnn.OUTPUTS[name])
        for ours, theirs in zip(got, expected, strict=True):
            assert ours.shape == theirs.shape
            assert float(np.abs(ours - theirs).max()) <= 1e-4


def test_same_faces_as_torch_on_sample_photos(
    sessions: dict[str, ort.InferenceSession],
    mtcnn_torch: dict[str, Any],
    photos: dict[str, bytes],
) -> None:
    ours = MTCNN(sessions["pnet"], sessions["rnet"], sessions["onet"])
    theirs = MTCNN(*(TorchSession(n, mtcnn_torch[n]) for n in mtcnn.NETWORKS))
    found = 0
    for name, data in photos.items():
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        a, b = ours.detect(rgb), theirs.detect(rgb)
        assert len(a) == len(b), name
        for fa, fb in zip(a, b, strict=True):
            # The same boxes: float32 rounding differences of ~1e-6 may move them a hair.
            assert np.abs(np.subtract(fa.box, fb.box)).max() < 1e-2, name
        found += len(a)
    assert found >= 1  # astronaut's face


def test_weights_that_do_not_fit_are_refused_with_the_layer() -> None:
    weights = mtcnn.state_dicts(CACHE_DIR)["rnet"]
    weights["dense4.weight"] = weights["dense4.weight"][:, :500]
    with pytest.raises(ConversionError, match=r"rnet graph does not check: .*node name: dense4"):
        mtcnn.rnet(weights)
