"""``optimize`` for real: ONNX Runtime quantizes the tiny classifier and the pulled
EfficientNet-Lite0; the report's numbers are recomputed here from the two ONNX files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from argus.engines import RuntimeChoice
from argus.errors import BadInput, NotFound
from argus.models.registry import CANARY, PRODUCTION, ModelRegistry
from argus.optimize import images
from argus.optimize.run import OptimizeRequest, optimize
from argus.tasks import load_task_model
from argus.tasks.classify import softmax
from tests.conftest import copy_home
from tests.optimize.conftest import open_registry
from tests.tiny_model import TINY


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_int8_tiny_version_with_its_agreement_report_and_lineage(
    tiny_registry: ModelRegistry, photo_dir: Path
) -> None:
    registry = tiny_registry
    parent = registry.resolve(TINY)
    result = optimize(registry, registry.store, OptimizeRequest(TINY, calibrate=photo_dir))
    new = result.version
    assert result.created and new.number == 2 and new.aliases == []
    assert registry.resolve(TINY).number == parent.number  # production did not move
    assert result.promotion is None

    # The new file is int8: quantize/dequantize pairs and int8 weights.
    graph = onnx.load(str(new.path / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)

    # Lineage: the parent's digest, the method, the calibration photos' digest.
    package = registry.store.load(parent.digest)
    model = load_task_model(package, 1, RuntimeChoice())
    calibration = images.from_folder(photo_dir, model, "calibration")
    source = new.source
    assert source["kind"] == "optimized"
    assert source["parent"] == {"name": TINY, "version": 1, "digest": parent.digest}
    assert source["method"]["to"] == "int8" and source["method"]["format"] == "QDQ"
    assert source["calibration"] == {"digest": calibration.digest, "images": 6}
    assert new.parent_version == 1 and new.training_data_digest == calibration.digest

    # The report in the package: recompute its numbers from the two ONNX files.
    report = json.loads((new.path / "report.json").read_text())
    assert report["parent"]["digest"] == parent.digest
    held = images.bundled(model)
    dropped = images.drop_near_calibration(held, calibration)
    assert len(held) >= 200 and len(held) + len(dropped) == 252
    assert report["held_out"]["left_out_as_calibration"] == dropped
    x = np.stack(held.rows)
    p = softmax(_session(parent.path / "model.onnx").run(None, {"x": x})[0])
    q = softmax(_session(new.path / "model.onnx").run(None, {"x": x})[0])
    agreement = report["agreement"]
    assert agreement["images"] == len(held) == source["held_out"]["images"]
    assert agreement["top1_agreement"] == round(float(np.mean(p.argmax(1) == q.argmax(1))), 4)
    assert agreement["max_score_diff"] == pytest.approx(float(np.abs(p - q).max()), abs=1e-4)
    assert agreement["top4_overlap"] == 1.0  # four classes: the top four are all of them
    assert agreement["measure"] == "top-1 agreement"
    assert new.metrics["agreement"] == agreement["agreement"]
    assert source["agreement"]["top1_agreement"] == agreement["top1_agreement"]
    assert report["speed"]["parent_ms"] > 0 and report["speed"]["new_ms"] > 0

    # Served like any version: the task loads it and answers.
    loaded = load_task_model(registry.store.load(new.digest), 1)
    assert loaded.finish(loaded.infer([held.rows[0]])[0], held.images[0], {})["labels"]


def test_below_the_threshold_it_is_kept_but_not_promoted(
    tiny_registry: ModelRegistry, grey_dir: Path
) -> None:
    said: list[str] = []
    req = OptimizeRequest(TINY, calibrate=grey_dir, promote_if_agrees=0.99)
    result = optimize(tiny_registry, tiny_registry.store, req, say=said.append)
    # Ranges calibrated on flat grey clip every real photo: the answers collapse.
    assert result.report["agreement"]["top1_agreement"] < 0.9
    assert result.promotion is not None and result.promotion["promoted"] is False
    assert "below --promote-if-agrees 0.99" in result.promotion["why"]
    assert any("not promoted" in s and "is kept" in s for s in said)
    info = tiny_registry.show(TINY)
    assert [v.number for v in info.versions] == [1, 2]
    assert info.aliases == {PRODUCTION: 1}
    assert not [e for e in tiny_registry.history(TINY) if e["action"] == "promote"]

    # The same gate on a canary: not started either.
    req = OptimizeRequest(TINY, calibrate=grey_dir, promote_if_agrees=0.99, canary=10)
    result = optimize(tiny_registry, tiny_registry.store, req)
    assert result.promotion and result.promotion["canary"] is None
    assert CANARY not in tiny_registry.show(TINY).aliases


def test_promoted_or_canaried_when_it_agrees(
    tiny_registry: ModelRegistry, photo_dir: Path
) -> None:
    req = OptimizeRequest(TINY, calibrate=photo_dir, promote_if_agrees=0.9, canary=25)
    result = optimize(tiny_registry, tiny_registry.store, req)
    info = tiny_registry.show(TINY)
    assert info.aliases == {CANARY: 2, PRODUCTION: 1} and info.canary_percent == 25
    event = tiny_registry.history(TINY)[-1]
    assert event["action"] == "canary" and event["detail"]["required"] == 0.9
    assert event["detail"]["agreement"] == result.report["agreement"]["agreement"]

    result = optimize(tiny_registry, tiny_registry.store,
                      OptimizeRequest(TINY, calibrate=photo_dir, promote_if_agrees=0.9))
    assert result.promotion and result.promotion["promoted"] is True
    info = tiny_registry.show(TINY)
    # Promoting ends the canary. The second run is version 3, or version 2 again when its package
    # came out byte for byte the same (the tiny model's timings in report.json often do).
    assert info.aliases == {PRODUCTION: result.version.number}
    assert result.version.number in (2, 3) and info.canary_percent in (0, None)
    promote = tiny_registry.history(TINY)[-2]
    assert promote["action"] == "promote" and "reaches" in promote["detail"]["why"]


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (OptimizeRequest(TINY, canary=0, calibrate=Path(".")), "--canary must be"),
        (OptimizeRequest(TINY, canary=101, calibrate=Path(".")), "--canary must be"),
        (OptimizeRequest(TINY, promote_if_agrees=1.5, calibrate=Path(".")),
         "--promote-if-agrees must be"),
        (OptimizeRequest(TINY), "--to int8 needs --calibrate"),
        (OptimizeRequest(TINY, to="int4", calibrate=Path(".")), "--to must be one of"),
    ],
)
def test_wrong_flags_are_refused_before_any_work(
    tiny_registry: ModelRegistry, req: OptimizeRequest, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        optimize(tiny_registry, tiny_registry.store, req)
    assert len(tiny_registry.show(TINY).versions) == 1


def test_calibration_folders_without_images_are_refused(
    tiny_registry: ModelRegistry, tmp_path: Path
) -> None:
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    with pytest.raises(BadInput, match="no readable images: 1 files, none with an image suffix"):
        optimize(tiny_registry, tiny_registry.store, OptimizeRequest(TINY, calibrate=empty))
    (empty / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    with pytest.raises(BadInput, match="no readable images: 1 image files, none readable"):
        optimize(tiny_registry, tiny_registry.store, OptimizeRequest(TINY, calibrate=empty))
    with pytest.raises(NotFound, match="does not exist"):
        optimize(tiny_registry, tiny_registry.store,
                 OptimizeRequest(TINY, calibrate=tmp_path / "nowhere"))


def test_staged_models_and_optimized_versions_are_refused(
    pulled_home: Path, tmp_path: Path, photo_dir: Path
) -> None:
    registry = open_registry(copy_home(pulled_home, tmp_path / "home"))
    try:
        with pytest.raises(BadInput, match="several networks or inputs run in stages"):
            optimize(registry, registry.store, OptimizeRequest("mtcnn", calibrate=photo_dir))
        made = optimize(registry, registry.store,
                        OptimizeRequest("efficientnet-lite0", calibrate=photo_dir))
        _check_efficientnet(registry, made.version.number, made.report)
        with pytest.raises(BadInput, match="was itself made by optimize"):
            optimize(registry, registry.store,
                     OptimizeRequest(f"efficientnet-lite0:{made.version.number}",
                                     calibrate=photo_dir))
    finally:
        registry.engine.dispose()


def _check_efficientnet(registry: ModelRegistry, number: int, report: dict[str, object]) -> None:
    """The pulled classifier quantized on the six sample photos: compared on the crops,
    scales and flips left (the whole photos and their rescalings are the calibration photos)."""
    agreement, held = report["agreement"], report["held_out"]
    assert isinstance(agreement, dict) and isinstance(held, dict)
    left_out = held["left_out_as_calibration"]
    assert agreement["images"] == 252 - len(left_out) >= 200
    assert 12 <= len(left_out) <= 18  # whole and rescaled, never a crop or a mirror image
    assert all("/whole" in n or "/scale" in n for n in left_out)
    assert not any("flip" in n for n in left_out)
    # Near-ties (an Egyptian cat or a tiger cat) flip under int8 rounding; clear answers hold.
    assert agreement["top1_agreement"] >= 0.85 and agreement["top5_overlap"] >= 0.85
    assert agreement["clear_top1_agreement"] >= agreement["top1_agreement"]
    assert 0 < agreement["max_score_diff"] < 0.5
    speed = report["speed"]
    assert isinstance(speed, dict) and speed["speedup"] > 1.0
    version = registry.resolve("efficientnet-lite0", version=number)
    assert version.source["parent"]["version"] == 1
    assert {o.name for o in registry.store.load(version.digest).manifest.outputs} == {
        "logits", "features"}


def test_bf16_version_runs_on_openvino_with_its_check_recorded(
    tiny_registry: ModelRegistry,
) -> None:
    pytest.importorskip("openvino")
    result = optimize(tiny_registry, tiny_registry.store, OptimizeRequest(TINY, to="bf16"))
    package = tiny_registry.store.load(result.version.digest)
    parent = tiny_registry.store.load(tiny_registry.resolve(TINY, version=1).digest)
    # The same network; what changes is how it is run, and the evidence that allows it.
    assert package.file("model.onnx").read_bytes() == parent.file("model.onnx").read_bytes()
    runtime = package.runtime
    assert (runtime.engine, runtime.precision) == ("openvino", "bf16")
    agreement = result.report["agreement"]
    assert not isinstance(runtime.bf16_checked, bool) and runtime.bf16_checked is not None
    assert runtime.bf16_checked.images == agreement["images"] == 252  # nothing calibrated
    assert runtime.bf16_checked.top1_agreement == agreement["top1_agreement"]
    assert result.version.source["method"]["engine"] == "openvino"
    assert "calibration" not in result.version.source
    loaded = load_task_model(package, 1)
    assert loaded.choice.engine == "openvino" and loaded.choice.precision == "bf16"


def test_held_out_images_from_a_folder_and_a_small_set_warned(
    tiny_registry: ModelRegistry, photo_dir: Path, grey_dir: Path
) -> None:
    said: list[str] = []
    result = optimize(tiny_registry, tiny_registry.store,
                      OptimizeRequest(TINY, calibrate=grey_dir, held_out=photo_dir),
                      say=said.append)
    held = result.report["held_out"]
    assert held["images"] == 6 and held["made_from"] == "--held-out folder"
    assert {d["image"] for d in result.report["agreement"]["disagreements"]} <= {
        p.name for p in photo_dir.iterdir()}
    assert any("6 held-out images; the agreement is a rough figure below 200" in s for s in said)
    with pytest.raises(BadInput, match="every held-out image is also a calibration photo"):
        optimize(tiny_registry, tiny_registry.store,
                 OptimizeRequest(TINY, calibrate=photo_dir, held_out=photo_dir))
