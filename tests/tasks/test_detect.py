"""The detect task on YOLO-layout ONNX models built here, whose outputs are known exactly."""

from __future__ import annotations

import io
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from argus.engines import RuntimeChoice
from argus.errors import BadInput, BadPackage
from argus.images import DecodedImage, Limits, decode
from argus.manifest import ModelPackage
from argus.models.packages import PackageStore
from argus.tasks import load_task_model
from argus.tasks.detect import DetectModel, decode_predictions, nms
from tests.cli.test_ask import run

GREY = 114 / 255


def candidates(classes: int, *rows: tuple[float, float, float, float, int, float]) -> np.ndarray:
    """(cx, cy, w, h, class, score) per candidate → the [4 + classes, N] block of one image."""
    out = np.zeros((4 + classes, len(rows)), np.float32)
    for n, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[:4, n] = (cx, cy, w, h)
        out[4 + cls, n] = score
    return out


def yolo_onnx(
    path: Path,
    block: np.ndarray,
    size: tuple[int | str, int | str] = (64, 64),
    batch: int | str = 1,
    metadata: dict[str, str] | None = None,
    scores_times_mean: bool = False,
) -> Path:
    """A model whose output is ``block`` for every image ([batch, rows, N]); with
    ``scores_times_mean`` the score rows are multiplied by the image's mean input value."""
    rows, n = block.shape
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *size])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, rows, n])
    score_rows = np.zeros((1, rows, n), np.float32)
    score_rows[:, 4:] = 1
    consts: dict[str, np.ndarray] = {
        "axes": np.array([1, 2, 3], np.int64),
        "unsq": np.array([1, 2], np.int64),
        "block": block[None].astype(np.float32),
        "score_rows": score_rows,
        "box_rows": 1 - score_rows,
        "zero": np.zeros((1, 1, 1), np.float32),
    }
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes"], ["mean"], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "unsq"], ["mean3"]),
    ]
    if scores_times_mean:
        nodes += [
            helper.make_node("Mul", ["score_rows", "mean3"], ["scaled"]),
            helper.make_node("Add", ["scaled", "box_rows"], ["factor"]),
            helper.make_node("Mul", ["block", "factor"], ["output0"]),
        ]
    else:
        nodes += [
            helper.make_node("Mul", ["mean3", "zero"], ["nothing"]),
            helper.make_node("Add", ["block", "nothing"], ["output0"]),
        ]
    used = {name for node in nodes for name in node.input}
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used]
    graph = helper.make_graph(nodes, "yolo", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def package(
    tmp_path: Path, model: Path, options: dict[str, Any] | None = None, labels: str | None = None
) -> ModelPackage:
    src = tmp_path / f"src-{uuid.uuid4().hex[:8]}"
    src.mkdir()
    shutil.copy(model, src / "model.onnx")
    fields: dict[str, Any] = {
        "name": "yolo",
        "task": "detect",
        "model": "model.onnx",
        "license": "MIT",
        "source": {"kind": "test"},
    }
    if labels is not None:
        (src / "labels.txt").write_text(labels)
        fields["labels"] = "labels.txt"
    if options:
        fields["options"] = options
    return PackageStore(tmp_path / "store").add(src, fields)


def load(
    tmp_path: Path, model: Path, options: dict[str, Any] | None = None, labels: str | None = None
) -> DetectModel:
    loaded = load_task_model(package(tmp_path, model, options, labels), threads=1)
    if not isinstance(loaded, DetectModel):
        raise TypeError(f"detect package loaded as {type(loaded).__name__}")
    return loaded


def image_bytes(width: int, height: int, colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format=fmt, quality=95)
    return buf.getvalue()


def ask(model: DetectModel, data: bytes, **params: Any) -> list[dict[str, Any]]:
    image = decode(data, Limits(), model.min_side)
    raw = model.infer([model.prepare(image, params)])[0]
    objects: list[dict[str, Any]] = model.finish(raw, image, params)["objects"]
    return objects


def boxes_of(objects: list[dict[str, Any]]) -> list[tuple[str, list[float], float]]:
    return [(o["label"], o["box"], o["score"]) for o in objects]


WHITE_64 = image_bytes(64, 64, (255, 255, 255))


def test_decoding_threshold_and_best_class(tmp_path: Path) -> None:
    block = candidates(
        2,
        (20, 20, 10, 10, 0, 0.9),
        (40, 10, 4, 4, 0, 0.25),  # exactly at the threshold: dropped (score must exceed it)
        (10, 50, 6, 6, 0, 0.1),
    )
    block = np.concatenate([block, [[50], [50], [8], [8], [0.3], [0.6]]], axis=1)
    model = load(tmp_path, yolo_onnx(tmp_path / "m.onnx", block), labels="cat\ndog\n")
    assert ask(model, WHITE_64) == [
        {"box": [15.0, 15.0, 25.0, 25.0], "label": "cat", "index": 0, "score": 0.9},
        {"box": [46.0, 46.0, 54.0, 54.0], "label": "dog", "index": 1, "score": 0.6},
    ]
    low = ask(model, WHITE_64, conf=0.05)
    assert [o["score"] for o in low] == [0.9, 0.6, 0.25, 0.1]
    assert low[3]["box"] == [7.0, 47.0, 13.0, 53.0]
    assert ask(model, WHITE_64, conf="0.95") == []
    for bad in ("lots", 1.5, -0.1):
        with pytest.raises(BadInput, match="conf must be"):
            ask(model, WHITE_64, conf=bad)
    strict = load(tmp_path, tmp_path / "m.onnx", options={"conf": 0.7}, labels="cat\ndog\n")
    assert [o["label"] for o in ask(strict, WHITE_64)] == ["cat"]


def test_nms_per_class_and_max_det(tmp_path: Path) -> None:
    block = candidates(
        2,
        (22, 20, 20, 20, 0, 0.8),  # IoU 0.82 with the 0.9 box of its class: suppressed
        (20, 20, 20, 20, 0, 0.9),
        (20, 20, 20, 20, 1, 0.7),  # same place, other class: kept
        (30, 20, 20, 20, 0, 0.6),  # IoU 1/3 with the 0.9 box: kept at iou 0.45
    )
    path = yolo_onnx(tmp_path / "m.onnx", block)
    assert boxes_of(ask(load(tmp_path, path), WHITE_64)) == [
        ("0", [10.0, 10.0, 30.0, 30.0], 0.9),
        ("1", [10.0, 10.0, 30.0, 30.0], 0.7),
        ("0", [20.0, 10.0, 40.0, 30.0], 0.6),
    ]
    tight = load(tmp_path, path, options={"iou": 0.3})
    assert [o["score"] for o in ask(tight, WHITE_64)] == [0.9, 0.7]
    capped = load(tmp_path, path, options={"max_det": 1})
    assert [o["score"] for o in ask(capped, WHITE_64)] == [0.9]
    with pytest.raises(BadPackage, match=r"options\.iou must be between 0.0 and 1.0"):
        load(tmp_path, path, options={"iou": 2})


def reference_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float
) -> list[int]:
    """Plain per-class greedy NMS, one pair at a time."""

    def overlap(a: np.ndarray, b: np.ndarray) -> float:
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return float(inter / union)

    kept: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -scores[k]):
        if all(classes[k] != classes[i] or overlap(boxes[i], boxes[k]) <= iou for k in kept):
            kept.append(i)
    return kept


def test_vectorised_nms_matches_pairwise_reference() -> None:
    rng = np.random.default_rng(5)
    n = 400
    xywh = np.column_stack([rng.uniform(0, 200, (n, 2)), rng.uniform(5, 60, (n, 2))])
    scores = rng.permutation(np.linspace(0.3, 0.99, n))
    classes = rng.integers(0, 3, n)
    block = np.zeros((7, n))
    block[:4] = xywh.T
    block[4 + classes, np.arange(n)] = scores
    boxes, got_scores, got_classes = decode_predictions(block, 0.25, 0.45, 10_000)
    xyxy = np.column_stack([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2])
    expected = reference_nms(xyxy, scores, classes, 0.45)
    assert 20 < len(expected) < n  # the case really suppresses some and keeps some
    np.testing.assert_allclose(got_scores, scores[expected])
    np.testing.assert_array_equal(got_classes, classes[expected])
    np.testing.assert_allclose(boxes, xyxy[expected])
    assert list(nms(xyxy, scores, 0.45, 3)) == reference_nms(xyxy, scores, np.zeros(n), 0.45)[:3]


def test_letterbox_wide_image_pads_top_and_bottom(tmp_path: Path) -> None:
    block = candidates(1, (160, 160, 100, 50, 0, 0.9), (160, 70, 100, 40, 0, 0.8))
    model = load(tmp_path, yolo_onnx(tmp_path / "m.onnx", block, size=(320, 320)))
    data = image_bytes(640, 320, (200, 10, 60))
    tensor = model.prepare(decode(data, Limits()), {})
    assert tensor.shape == (3, 320, 320) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[:, :80], GREY)
    np.testing.assert_allclose(tensor[:, 240:], GREY)
    colour = np.array([200, 10, 60])[:, None, None] / 255
    np.testing.assert_allclose(tensor[:, 80:240], np.broadcast_to(colour, (3, 160, 320)), atol=1e-6)
    # The second box reaches into the top padding: clipped to the image.
    assert boxes_of(ask(model, data)) == [
        ("0", [220.0, 110.0, 420.0, 210.0], 0.9),
        ("0", [220.0, 0.0, 420.0, 20.0], 0.8),
    ]


def test_letterbox_tall_image_pads_left_and_right(tmp_path: Path) -> None:
    block = candidates(1, (160, 160, 100, 50, 0, 0.9), (230, 160, 40, 20, 0, 0.8))
    model = load(tmp_path, yolo_onnx(tmp_path / "m.onnx", block, size=(320, 320)))
    data = image_bytes(320, 640, (90, 90, 90))
    tensor = model.prepare(decode(data, Limits()), {})
    np.testing.assert_allclose(tensor[:, :, :80], GREY)
    np.testing.assert_allclose(tensor[:, :, 240:], GREY)
    np.testing.assert_allclose(tensor[:, :, 80:240], 90 / 255, atol=1e-6)
    assert boxes_of(ask(model, data)) == [
        ("0", [60.0, 270.0, 260.0, 370.0], 0.9),
        ("0", [260.0, 300.0, 320.0, 340.0], 0.8),  # reaches into the right padding: clipped
    ]


def test_odd_padding_goes_to_the_bottom_as_ultralytics(tmp_path: Path) -> None:
    block = candidates(1, (160, 127, 100, 40, 0, 0.9))
    model = load(tmp_path, yolo_onnx(tmp_path / "m.onnx", block, size=(320, 320)))
    data = image_bytes(640, 330, (255, 255, 255))
    tensor = model.prepare(decode(data, Limits()), {})
    grey_rows = np.flatnonzero(np.isclose(tensor[0].mean(1), GREY))
    assert list(grey_rows) == [*range(77), *range(242, 320)]  # 77 above, 78 below
    assert ask(model, data)[0]["box"] == [220.0, 60.0, 420.0, 140.0]


def test_boxes_map_to_the_original_when_decoded_reduced(tmp_path: Path) -> None:
    block = candidates(1, (160, 160, 100, 50, 0, 0.9))
    model = load(tmp_path, yolo_onnx(tmp_path / "m.onnx", block, size=(320, 320)))
    assert model.min_side == 320
    data = image_bytes(1280, 640, (30, 140, 220), fmt="JPEG")
    image = decode(data, Limits(), model.min_side)
    assert image.rgb.shape == (320, 640, 3) and image.scale == 0.5  # really decoded reduced
    assert ask(model, data)[0]["box"] == [440.0, 220.0, 840.0, 420.0]
    # Built by hand: a quarter-size decode of a 2560x1280 original.
    small = DecodedImage(
        np.asarray(Image.open(io.BytesIO(data)).reduce(4)), 2560, 1280, "x", "JPEG"
    )
    raw = model.infer([model.prepare(small, {})])[0]
    assert model.finish(raw, small, {})["objects"][0]["box"] == [880.0, 440.0, 1680.0, 840.0]


def test_class_names_from_metadata_options_labels_or_index(tmp_path: Path) -> None:
    block = candidates(2, (20, 20, 10, 10, 1, 0.9))

    def label(**kw: Any) -> str:
        meta = kw.pop("metadata", None)
        path = yolo_onnx(tmp_path / f"{uuid.uuid4().hex}.onnx", block, metadata=meta)
        return str(ask(load(tmp_path, path, **kw), WHITE_64)[0]["label"])

    ultralytics = "{0: 'person', 1: 'bicycle'}"
    assert label(metadata={"names": ultralytics}) == "bicycle"
    assert label(metadata={"names": ultralytics}, labels="a\nb\n") == "bicycle"
    assert label(options={"names": '["cat", "dog"]'}) == "dog"
    assert label(options={"names": "- red\n- green\n"}) == "green"
    assert label(options={"names": {0: "zero", 1: "one"}}) == "one"
    assert label(labels="first\nsecond\n") == "second"
    assert label() == "1"
    with pytest.raises(
        BadPackage, match="the labels file has 3 class names but the model's output has 2 classes"
    ):
        label(labels="a\nb\nc\n")
    with pytest.raises(BadPackage, match="without gaps"):
        label(metadata={"names": "{0: 'person', 2: 'car'}"})
    canary = tmp_path / "evaluated"
    with pytest.raises(BadPackage, match="ONNX metadata names must be a list"):
        label(metadata={"names": f"__import__('pathlib').Path({str(canary)!r}).touch()"})
    assert not canary.exists()


def test_wrong_layouts_are_refused_at_load(tmp_path: Path) -> None:
    three_rows = yolo_onnx(tmp_path / "three.onnx", np.zeros((3, 10), np.float32))
    with pytest.raises(
        BadPackage, match=r"output output0 has shape \[1, 3, 10\].*\[1, 4 \+ classes, N\]"
    ):
        load(tmp_path, three_rows)
    block = candidates(1, (16, 16, 8, 8, 0, 0.9))
    dynamic = yolo_onnx(tmp_path / "dyn.onnx", block, size=("height", "width"))
    with pytest.raises(BadPackage, match=r"set options\.imgsz"):
        load(tmp_path, dynamic)
    assert load(tmp_path, dynamic, options={"imgsz": 32}).input_h == 32
    from_meta = yolo_onnx(
        tmp_path / "meta.onnx", block, size=("h", "w"), metadata={"imgsz": "[32, 48]"}
    )
    model = load(tmp_path, from_meta)
    assert (model.input_h, model.input_w) == (32, 48)
    with pytest.raises(BadPackage, match="contradicts the model's fixed input size"):
        load(tmp_path, yolo_onnx(tmp_path / "fixed.onnx", block), options={"imgsz": 320})
    with pytest.raises(BadPackage, match=r"options\.conf must be a number"):
        load(tmp_path, yolo_onnx(tmp_path / "ok.onnx", block), options={"conf": "high"})


def test_dynamic_batch_runs_together_and_fixed_batch_one_at_a_time(tmp_path: Path) -> None:
    block = candidates(1, (16, 16, 8, 8, 0, 0.9))
    images = [decode(image_bytes(32, 32, (v, v, v)), Limits()) for v in (255, 0, 51)]
    for batch, expected_batch in (("batch", 8), (1, 1)):
        path = yolo_onnx(tmp_path / f"{batch}.onnx", block, (32, 32), batch, scores_times_mean=True)
        model = load(tmp_path, path)
        assert model.max_batch_size == expected_batch
        raws = model.infer([model.prepare(img, {}) for img in images])
        assert [r.shape for r in raws] == [(5, 1)] * 3
        # Scores scale with each image's own mean: white 1, black 0, 51 grey 0.2.
        np.testing.assert_allclose([r[4, 0] for r in raws], [0.9, 0.0, 0.18], rtol=1e-5)
        found = [
            model.finish(r, img, {"conf": 0.1})["objects"]
            for r, img in zip(raws, images, strict=True)
        ]
        assert [[o["score"] for o in f] for f in found] == [[0.9], [], [0.18]]
        tensors = model.infer_tensors({"images": np.ones((1, 3, 32, 32), np.float32)})
        assert list(tensors) == ["output0"]
        np.testing.assert_allclose(tensors["output0"], block[None])


def test_openvino_runtime_gives_the_same_answer(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    block = candidates(2, (160, 160, 100, 50, 1, 0.8), (60, 200, 40, 40, 0, 0.7))
    meta = {"names": "{0: 'person', 1: 'bicycle'}"}
    path = yolo_onnx(tmp_path / "m.onnx", block, size=(320, 320), batch="batch", metadata=meta)
    pkg = package(tmp_path, path)
    data = image_bytes(640, 320, (255, 255, 255))
    on_ort = ask(DetectModel(pkg, 1), data)
    model = DetectModel(pkg, 1, RuntimeChoice("openvino"))
    assert type(model.ort).__name__ == "OpenVINOSession"
    assert model.dynamic_batch and model.labels == ["person", "bicycle"]
    assert ask(model, data) == on_ort
    assert [o["label"] for o in on_ort] == ["bicycle", "person"]


def test_cli_add_and_ask_detect_model(tmp_path: Path) -> None:
    block = candidates(2, (160, 160, 100, 50, 1, 0.8), (60, 200, 40, 40, 0, 0.7))
    meta = {"names": "{0: 'person', 1: 'bicycle'}", "imgsz": "[320, 320]"}
    model = yolo_onnx(tmp_path / "yolo.onnx", block, size=(320, 320), metadata=meta)
    home = tmp_path / "home"
    added = run(home, "models", "add", "bikes", str(model), "--task", "detect", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["version"] == 1
    picture = tmp_path / "street.jpg"
    picture.write_bytes(image_bytes(640, 320, (120, 130, 140), fmt="JPEG"))
    out = run(home, "ask", "bikes", str(picture), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["image"]["width"] == 640 and doc["models"][0]["name"] == "bikes"
    assert doc["answer"] == {
        "objects": [
            {"box": [220.0, 110.0, 420.0, 210.0], "label": "bicycle", "index": 1, "score": 0.8},
            {"box": [80.0, 200.0, 160.0, 280.0], "label": "person", "index": 0, "score": 0.7},
        ]
    }
    strict = run(home, "ask", "bikes", str(picture), "--json", "--conf", "0.75")
    assert [o["label"] for o in json.loads(strict.stdout)["answer"]["objects"]] == ["bicycle"]
    table = run(home, "ask", "bikes", str(picture))
    assert table.returncode == 0 and "bicycle" in table.stdout and "person" in table.stdout
    bad = yolo_onnx(tmp_path / "bad.onnx", np.zeros((3, 4), np.float32))
    assert run(home, "models", "add", "broken", str(bad), "--task", "detect").returncode == 0
    refused = run(home, "ask", "broken", str(picture))
    assert refused.returncode == 2 and "[1, 4 + classes, N]" in refused.stderr
