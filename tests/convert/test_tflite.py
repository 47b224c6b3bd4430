"""MediaPipe's .tflite models converted to ONNX, against LiteRT (the reference interpreter) on
real photos; LiteRT is in the dev extra."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from argus.convert import mediapipe, tflite
from argus.convert.graph import ConversionError

# Regions of the photos each model is meant to see (row0, col0, row1, col1), None: the whole photo.
CROPS: dict[str, dict[str, tuple[int, int, int, int] | None]] = {
    "pose_detection": {"astronaut": None, "china": None, "coffee": None},
    "pose_landmark_full": {"astronaut": (0, 60, 512, 572), "chelsea": None},
    "face_landmark": {"astronaut": (20, 140, 240, 360), "flower": None},
    "iris_landmark": {"astronaut": (80, 200, 150, 270), "astronaut_eye2": (75, 260, 145, 330)},
    "face_detection_short_range": {"astronaut": (0, 100, 300, 400), "rocket": None},
    "face_detection_full_range_sparse": {"astronaut": None, "china": None},
}
MEMBERS = {m.name: m for m in mediapipe.MEMBERS}


def model_input(
    photos: dict[str, bytes], key: str, model: str, size: tuple[int, int]
) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(photos[key.split("_")[0]])).convert("RGB"))
    box = CROPS[model][key]
    if box is not None:
        padded = np.pad(rgb, ((0, 512), (0, 512), (0, 0)))  # crops may run past the edge
        rgb = padded[box[0] : box[2], box[1] : box[3]]
    return mediapipe.model_inputs(MEMBERS[model], [np.ascontiguousarray(rgb)], size)


@pytest.mark.parametrize("model", list(CROPS))
def test_converted_model_matches_litert_on_photos(
    model: str,
    converted: dict[str, onnx.ModelProto],
    mediapipe_tflite: dict[str, bytes],
    photos: dict[str, bytes],
) -> None:
    litert: Any = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_content=mediapipe_tflite[model], num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        converted[model].SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == [inp["name"]]
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    assert sorted(o.name for o in session.get_outputs()) == sorted(outputs)
    for key in CROPS[model]:
        x = model_input(photos, key, model, tuple(inp["shape"][1:3]))
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {inp["name"]: x}),
                       strict=True))
        for name, index in outputs.items():
            expected = interpreter.get_tensor(index)
            assert got[name].shape == expected.shape, (key, name)
            # 2e-3 absolute, or relative to the output's size where it is over 1: pose
            # landmark's segmentation logits reach ~1.7e3, and there LiteRT's own kernels
            # (XNNPACK vs its reference ops) differ from each other by ~0.5.
            scale = max(1.0, float(np.abs(expected).max()))
            assert float(np.abs(got[name] - expected).max()) <= 2e-3 * scale, (key, name)


@pytest.mark.parametrize("model", ["pose_detection", "pose_landmark_full"])
def test_a_batch_answers_as_each_photo_alone(
    model: str,
    converted: dict[str, onnx.ModelProto],
    mediapipe_tflite: dict[str, bytes],
    photos: dict[str, bytes],
) -> None:
    """The batch axis is dynamic (tiles and scales of a photo in one call); the two models
    with reshapes and resizes, which must carry it, against LiteRT one photo at a time."""
    litert: Any = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_content=mediapipe_tflite[model], num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    session = ort.InferenceSession(
        converted[model].SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert session.get_inputs()[0].shape[0] == "batch"
    keys = list(CROPS[model])
    batch = np.concatenate(
        [model_input(photos, key, model, tuple(inp["shape"][1:3])) for key in keys * 2]
    )
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {inp["name"]: batch}),
                   strict=True))
    for i, x in enumerate(batch):
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        for d in interpreter.get_output_details():
            expected = interpreter.get_tensor(d["index"])[0]
            scale = max(1.0, float(np.abs(expected).max()))
            assert float(np.abs(got[d["name"]][i] - expected).max()) <= 2e-3 * scale


def test_a_fixed_batch_keeps_the_tflite_shapes(mediapipe_tflite: dict[str, bytes]) -> None:
    model = tflite.convert(mediapipe_tflite["pose_detection"], "fixed", dynamic_batch=False)
    dims = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert dims == [[1, 2254, 12], [1, 2254, 1]]


def test_the_detector_takes_any_multiple_of_32(
    converted: dict[str, onnx.ModelProto], mediapipe_tflite: dict[str, bytes],
    photos: dict[str, bytes],
) -> None:
    """The pose detector converted with ``size_step=32`` answers at 224x224 as the fixed-size
    conversion does, and at another size per cell of the larger grids."""
    dynamic = converted["pose_detection"]
    fixed = tflite.convert(mediapipe_tflite["pose_detection"], "fixed")
    assert [d.dim_param for d in dynamic.graph.input[0].type.tensor_type.shape.dim] == [
        "batch", "height", "width", ""]
    run = {name: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
           for name, m in (("dynamic", dynamic), ("fixed", fixed))}  # fmt: skip
    x = model_input(photos, "astronaut", "pose_detection", (224, 224))
    ours, theirs = (run[k].run(None, {"input_1": x}) for k in ("dynamic", "fixed"))
    for a, b in zip(ours, theirs, strict=True):
        assert float(np.abs(a - b).max()) <= 1e-3  # boxes are in input pixels, up to ~200
    wide = model_input(photos, "astronaut", "pose_detection", (288, 384))
    boxes, scores = run["dynamic"].run(None, {"input_1": wide})
    cells = 36 * 48 * 2 + 18 * 24 * 2 + 9 * 12 * 6
    assert boxes.shape == (1, cells, 12) and scores.shape == (1, cells, 1)


def test_a_network_that_cannot_take_any_size_is_refused(
    mediapipe_tflite: dict[str, bytes],
) -> None:
    """The landmark networks end in per-image vectors: no size_step conversion for them."""
    with pytest.raises(ConversionError, match=r"pads differently|cannot take the input's size"):
        tflite.convert(mediapipe_tflite["pose_landmark_full"], "pose", size_step=32)


def test_activations_stay_nchw_inside(converted: dict[str, onnx.ModelProto]) -> None:
    """Layout changes only at the input, around reshapes and at 4-D outputs, never per layer."""
    for name, model in converted.items():
        ops = [n.op_type for n in model.graph.node]
        allowed = 1 + ops.count("Reshape") + len(model.graph.output)
        assert ops.count("Transpose") <= allowed, name
        assert ops.count("Conv") >= 20, name


@pytest.mark.parametrize(
    ("model", "count"), [("pose_detection", 38), ("face_detection_full_range_sparse", 46)]
)
def test_sparse_weights_are_densified(
    model: str,
    count: int,
    mediapipe_tflite: dict[str, bytes],
    converted: dict[str, onnx.ModelProto],
) -> None:
    """The sparse models store weights behind DENSIFY; each becomes a dense initializer whose
    non-zeros are exactly the stored values (same count, same multiset)."""
    import tflite as flat  # the flatbuffer package, read independently of the converter

    parsed = flat.Model.GetRootAsModel(mediapipe_tflite[model], 0)
    graph = parsed.Subgraphs(0)
    stored = []
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        if tensor.Sparsity() is not None:
            raw = parsed.Buffers(tensor.Buffer()).DataAsNumpy().tobytes()
            stored.append(np.sort(np.frombuffer(raw, np.float16).astype(np.float32)))
    assert len(stored) == count
    weights = [
        np.sort(onnx.numpy_helper.to_array(i).ravel())
        for i in converted[model].graph.initializer
        if i.name.endswith(".weight")
    ]
    for values in stored:
        nonzero = values[values != 0]
        assert any(
            w.size >= values.size and np.array_equal(w[w != 0], nonzero) for w in weights
        )


def test_what_is_not_a_whole_tflite_model_is_refused(mediapipe_tflite: dict[str, bytes]) -> None:
    data = mediapipe_tflite["iris_landmark"]
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        tflite.convert(data[: len(data) // 3], "cut")
    with pytest.raises(ConversionError, match="not a TFLite model"):
        tflite.convert(b"\x08\x00\x00\x00ONNX" + data[8:], "renamed")


def sparsity_params(
    order: list[int], block_map: list[int], levels: list[tuple[int, list[int], list[int]]]
) -> Any:
    """A SparsityParameters flatbuffer: each level is (dense size, segments, indices); empty
    segments mean a DENSE level, otherwise SPARSE_CSR with int32 vectors."""
    import flatbuffers
    import tflite as flat

    b = flatbuffers.Builder(256)

    def int32_table(values: list[int]) -> int:
        flat.Int32VectorStartValuesVector(b, len(values))
        for v in reversed(values):
            b.PrependInt32(v)
        vec = b.EndVector()
        flat.Int32VectorStart(b)
        flat.Int32VectorAddValues(b, vec)
        return int(flat.Int32VectorEnd(b))

    def int32_vector(values: list[int]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependInt32(v)
        return int(b.EndVector())

    metas = []
    for size, segments, indices in levels:
        tables = (int32_table(segments), int32_table(indices)) if segments else None
        flat.DimensionMetadataStart(b)
        if tables is None:
            flat.DimensionMetadataAddFormat(b, 0)
            flat.DimensionMetadataAddDenseSize(b, size)
        else:
            flat.DimensionMetadataAddFormat(b, 1)
            flat.DimensionMetadataAddArraySegmentsType(b, 1)
            flat.DimensionMetadataAddArraySegments(b, tables[0])
            flat.DimensionMetadataAddArrayIndicesType(b, 1)
            flat.DimensionMetadataAddArrayIndices(b, tables[1])
        metas.append(flat.DimensionMetadataEnd(b))
    traversal, blocks = int32_vector(order), int32_vector(block_map)
    b.StartVector(4, len(metas), 4)
    for m in reversed(metas):
        b.PrependUOffsetTRelative(m)
    dims = b.EndVector()
    flat.SparsityParametersStart(b)
    flat.SparsityParametersAddTraversalOrder(b, traversal)
    if block_map:
        flat.SparsityParametersAddBlockMap(b, blocks)
    flat.SparsityParametersAddDimMetadata(b, dims)
    b.Finish(flat.SparsityParametersEnd(b))
    return flat.SparsityParameters.GetRootAs(b.Output(), 0), flat


def test_densify_column_major_csr() -> None:
    """Traversal order (1, 0): columns outer (dense), rows inner (CSR), int32 indices."""
    dense = np.array([[0, 2, 0], [1, 0, 0], [0, 3, 4]], np.float32)
    segments, indices, values = [0], [], []
    for col in range(3):
        rows = [r for r in range(3) if dense[r, col]]
        indices += rows
        values += [dense[r, col] for r in rows]
        segments.append(len(indices))
    params, flat = sparsity_params([1, 0], [], [(3, [], []), (3, segments, indices)])
    got = tflite.densify(np.array(values, np.float32), [3, 3], params, flat)
    assert np.array_equal(got, dense)


def test_densify_block_sparse() -> None:
    """A 4x6 matrix in 2x3 blocks: block rows dense, block columns CSR, each block dense inside."""
    rng = np.random.default_rng(3)
    dense = rng.normal(size=(4, 6)).astype(np.float32)
    dense[0:2, 0:3] = 0  # an all-zero block, which is not stored
    segments, indices, values = [0], [], []
    for brow in range(2):
        for bcol in range(2):
            block = dense[brow * 2 : brow * 2 + 2, bcol * 3 : bcol * 3 + 3]
            if block.any():
                indices.append(bcol)
                values += list(block.ravel())
        segments.append(len(indices))
    params, flat = sparsity_params(
        [0, 1, 2, 3], [0, 1], [(2, [], []), (2, segments, indices), (2, [], []), (3, [], [])]
    )
    got = tflite.densify(np.array(values, np.float32), [4, 6], params, flat)
    assert np.array_equal(got, dense)


@pytest.mark.parametrize("model", ["pose_detection", "face_landmark"])
def test_openvino_reading_the_tflite_agrees(
    model: str,
    converted: dict[str, onnx.ModelProto],
    mediapipe_tflite: dict[str, bytes],
    photos: dict[str, bytes],
    tmp_path: Any,
) -> None:
    """A second reference: OpenVINO's own .tflite frontend, on the same photo."""
    ov: Any = pytest.importorskip("openvino")
    path = tmp_path / f"{model}.tflite"
    path.write_bytes(mediapipe_tflite[model])
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    session = ort.InferenceSession(
        converted[model].SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (inp,) = session.get_inputs()
    size = tuple(int(d) for d in compiled.inputs[0].get_shape()[1:3])  # the .tflite's own
    x = model_input(photos, "astronaut", model, size)
    theirs = compiled(x)
    ours = dict(zip([o.name for o in session.get_outputs()], session.run(None, {inp.name: x}),
                    strict=True))
    for port in compiled.outputs:
        name = next(n for n in port.get_names() if n in ours)
        expected = theirs[port]
        scale = max(1.0, float(np.abs(expected).max()))
        assert float(np.abs(ours[name] - expected).max()) <= 2e-3 * scale, name


def test_an_op_it_does_not_map_is_named() -> None:
    """The hand landmark model (same wheel) has FULLY_CONNECTED, which none of ours use."""
    from tests.convert.conftest import CACHE_DIR

    hand = mediapipe.Member(
        "hand_landmark_full",
        "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
    )
    with pytest.raises(ConversionError, match=r"TFLite op (MEAN|FULLY_CONNECTED) is not supported"):
        mediapipe.convert_member(hand, CACHE_DIR)
