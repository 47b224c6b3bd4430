"""The comparisons behind the agreement report: exact numbers on hand-made answers, and a real
detector (a YOLO-layout ONNX graph) quantized and compared box by box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from argus.optimize.agreement import classify, detect, embed, match
from argus.optimize.run import OptimizeRequest, optimize
from tests.optimize.conftest import open_registry
from tests.tasks.test_detect import candidates, yolo_onnx


def test_classify_numbers() -> None:
    labels = [f"c{i}" for i in range(6)]
    a = [np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05]),
         np.array([0.40, 0.39, 0.1, 0.05, 0.05, 0.01])]
    b = [np.array([0.45, 0.25, 0.1, 0.1, 0.05, 0.05]),
         np.array([0.38, 0.41, 0.1, 0.05, 0.01, 0.05])]
    got = classify(labels, a, b, ["x", "y"])
    assert got["top1_agreement"] == 0.5 == got["agreement"]
    assert got["top5_overlap"] == 0.9  # y's fifth differs: c4 for the parent, c5 for the new one
    assert got["max_score_diff"] == 0.05
    assert got["clear_images"] == 1 and got["clear_top1_agreement"] == 1.0  # y is a near-tie
    assert got["disagreements"] == [{"image": "y", "parent": "c0 (0.400)", "new": "c1 (0.410)"}]


def test_embed_and_box_matching() -> None:
    got = embed([], [np.array([1.0, 0.0]), np.array([0.0, 1.0])],
                [np.array([1.0, 0.01]), np.array([0.3, 1.0])], ["p", "q"])
    assert got["agreement"] == 0.5 and got["min_cosine"] == pytest.approx(0.95783, abs=1e-5)
    box = {"box": [0, 0, 10, 10], "label": "cat", "score": 0.9}
    near = {"box": [1, 0, 11, 10], "label": "cat", "score": 0.8}
    dog = {"box": [0, 0, 10, 10], "label": "dog", "score": 0.9}
    assert match([box], [dog]) == [] and match([box], [near])[0][:2] == (0, 0)
    got = detect([], [{"objects": [box, dog]}, {"objects": []}],
                 [{"objects": [near]}, {"objects": []}], ["one", "none"])
    assert got["matched_boxes"] == 1 and got["agreement"] == round(2 / 3, 4)
    assert got["mean_iou"] == round(90 / 110, 4) and got["max_score_diff"] == 0.1
    assert got["same_boxes_images"] == 0.5
    assert got["disagreements"] == [{"image": "one", "parent_boxes": 2, "new_boxes": 1,
                                     "matched": 1}]


def test_a_detector_is_quantized_and_compared_box_by_box(
    tmp_path: Path, photo_dir: Path
) -> None:
    block = candidates(2, (20, 20, 16, 16, 0, 0.9), (44, 40, 20, 12, 1, 0.7))
    src = tmp_path / "src"
    src.mkdir()
    yolo_onnx(src / "model.onnx", block, batch="n", scores_times_mean=True)
    registry = open_registry(tmp_path / "home")
    try:
        fields = {"task": "detect", "model": "model.onnx", "license": "MIT",
                  "source": {"note": "made by the Argus tests"},
                  "options": {"names": ["cat", "dog"], "conf": 0.05}}
        registry.register("yolo", src, fields, alias="production")
        result = optimize(registry, registry.store,
                          OptimizeRequest("yolo", calibrate=photo_dir))
        a = result.report["agreement"]
        assert a["measure"] == "boxes matched (same class, IoU >= 0.5)"
        assert a["images"] >= 200 and a["parent_boxes"] > 0
        assert a["agreement"] >= 0.95 and a["mean_iou"] > 0.9
        loaded = registry.store.load(result.version.digest)
        assert loaded.task == "detect" and result.version.source["parent"]["version"] == 1
    finally:
        registry.engine.dispose()

