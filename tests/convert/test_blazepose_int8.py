"""The blazepose package's int8 detector: which convolutions stay float, how the pull compares
two detectors' answers, and when it keeps the float detector."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from argus.convert import blazepose_int8
from argus.convert.blazepose_int8 import (
    MAX_CHANGED,
    MAX_SHIFT,
    compare,
    head_convs,
    input_convs,
    verdict,
)


def test_the_first_convolution_and_the_heads_are_the_ones_kept_float(
    converted: dict[str, onnx.ModelProto],
) -> None:
    graph = converted["pose_detection"].graph
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    (first,) = input_convs(graph)
    # It reads the image through the NHWC -> NCHW transpose and its SAME padding, nothing else
    # (the quantizer's pre-processing folds the pad into it).
    path, name = [], first.input[0]
    while name != graph.input[0].name:
        path.append(producer[name].op_type)
        name = producer[name].input[0]
    assert path == ["Pad", "Transpose"]
    heads = head_convs(graph)
    # Two outputs (boxes, scores), each from three grids: a depthwise and a pointwise
    # convolution per head.
    assert len(heads) == 12 and len({n.name for n in heads}) == 12
    outputs = {o.name for o in graph.output}
    pointwise = [n for n in heads if all(r.op_type != "Conv" for r in readers[n.output[0]])]
    assert len(pointwise) == 6
    for node in pointwise:
        # From each, only reshapes, transposes and concatenation lead to an output.
        todo, reached = [node.output[0]], set()
        while todo:
            name = todo.pop()
            if name in outputs:
                reached.add(name)
            for reader in readers.get(name, []):
                assert reader.op_type in ("Transpose", "Reshape", "Concat"), reader.op_type
                todo += list(reader.output)
        assert len(reached) == 1
        # Its input is the head's depthwise convolution, kept float with it.
        depthwise = producer[node.input[0]]
        assert depthwise in heads
        assert next(a.i for a in depthwise.attribute if a.name == "group") > 1


def person(x: float, y: float, width: float = 40.0) -> dict[str, Any]:
    """An answered person as the check reads it: a face box of ``width`` at (x, y) and the
    detector's four keypoints below it."""
    return {
        "face_box": [x, y, x + width, y + width],
        "keypoints": {"mid_hip": [x + 20, y + 150], "full_body": [x + 20, y - 30],
                      "mid_shoulder": [x + 20, y + 60], "upper_body": [x + 20, y]},
    }


def moved(p: dict[str, Any], dx: float) -> dict[str, Any]:
    return {"face_box": [v + dx * (i % 2 == 0) for i, v in enumerate(p["face_box"])],
            "keypoints": {k: [v[0] + dx, v[1]] for k, v in p["keypoints"].items()}}


def test_compare_counts_people_missing_extra_and_moved() -> None:
    a, b = person(100, 100), person(400, 100)
    names = ["one", "two"]
    same = compare([[a], [b]], [[moved(a, 2.0)], [b]], names)
    assert same["people"] == 2 and same["changed"] == 0
    assert same["largest_shift"] == pytest.approx(2.0 / 40)
    # Moved by more than MAX_SHIFT face widths: the same place, not the same detection.
    far = compare([[a], [b]], [[moved(a, (MAX_SHIFT + 0.05) * 40)], [b]], names)
    assert far["changed"] == 1 and "moved by" in far["changes"][0]
    lost = compare([[a], [b]], [[], [b]], names)
    assert lost["changed"] == 1 and lost["changes"] == ["one: a person not found"]
    extra = compare([[a], [b]], [[a, person(700, 300)], [b]], names)
    assert extra["changed"] == 1
    assert extra["changes"] == ["one: a person the float detector did not find"]
    # Two people, each matched to its own nearest.
    swapped = compare([[a, b]], [[b, moved(a, 1.0)]], ["both"])
    assert swapped["changed"] == 0


def test_the_verdict_refuses_drift_and_false_people() -> None:
    fine = {"changed": 2, "people": 40, "changed_share": 0.05,
            "more_people_on_photos_without_people": 0}
    assert verdict(fine) is None
    drifting = {**fine, "changed": 12, "changed_share": 0.3}
    why = verdict(drifting)
    assert why is not None and "12 of the float detector's 40" in why
    assert f"{MAX_CHANGED:.0%}" in why
    seeing = {**fine, "more_people_on_photos_without_people": 1}
    why = verdict(seeing)
    assert why is not None and "photos without people" in why


def test_without_the_sample_photos_the_float_detector_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a runtime-only install: no scikit-image, so no calibration; the detector file is
    left as it is and the record says why."""
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    detector = tmp_path / "detector.onnx"
    detector.write_bytes(b"the float detector")
    made = blazepose_int8.make_int8(tmp_path, {})
    assert made["detector"] == "float"
    assert "scikit-image" in made["why"] and "argus-vision[optimize]" in made["why"]
    assert detector.read_bytes() == b"the float detector"


def digest(rgb: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + str(rgb.shape).encode()).hexdigest()


def test_calibration_and_held_out_images_differ() -> None:
    pytest.importorskip("skimage.data")
    photos = blazepose_int8.bundled_photos()
    calibration = blazepose_int8.calibration_set(photos)
    held = blazepose_int8.held_out_set(photos)
    seen = {digest(img) for _, img in calibration}
    assert not any(digest(img) in seen for _, img in held)
    # Both hold the astronaut and photos without people; the held-out photos turned too.
    assert sum(n.startswith("collage") for n, _ in held) == blazepose_int8.HELD_OUT_IMAGES
    assert {n for n, _ in held if "turned" in n} == {
        f"{name} turned {a}" for name in ("coffee", "chelsea", "rocket", "china", "flower")
        for a in (90, 180, 270)}
