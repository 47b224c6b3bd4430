"""OpenVINO answers like ONNX Runtime on the same package, in f32 and (where the manifest
records the check) in bf16."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from argus.engines import OpenVINOSession, RuntimeChoice
from argus.images import Limits, decode
from argus.manifest import Bf16Check, ModelPackage
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from argus.tasks import load_task_model


def _package(home: Path, name: str) -> ModelPackage:
    from argus.db.engine import make_engine, migrate

    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    store = PackageStore(settings.packages_dir)
    version = ModelRegistry(engine, store).resolve(name)
    engine.dispose()
    return store.load(version.digest)


def test_openvino_f32_matches_onnxruntime(pulled_home: Path, photos: dict[str, bytes]) -> None:
    package = _package(pulled_home, "efficientnet-lite0")
    ort_model = load_task_model(package, 1, RuntimeChoice("onnxruntime"))
    ov_model = load_task_model(package, 1, RuntimeChoice("openvino", "f32"))
    assert isinstance(ov_model.ort, OpenVINOSession)  # type: ignore[attr-defined]
    image = decode(photos["coffee"], Limits(), ort_model.min_side)
    x = ort_model.prepare(image, {})
    a = ort_model.infer([x, x])
    b = ov_model.infer([x, x])
    assert np.abs(a[0] - b[0]).max() < 1e-3
    assert int(np.argmax(b[0])) == 967  # espresso


def test_openvino_runs_the_face_cascade(pulled_home: Path, photos: dict[str, bytes]) -> None:
    package = _package(pulled_home, "mtcnn")
    model = load_task_model(package, 1, RuntimeChoice("openvino", "f32"))
    rgb = np.asarray(Image.open(io.BytesIO(photos["astronaut"])).convert("RGB"))
    faces = model.infer([rgb])[0]
    assert len(faces) == 1
    box = faces[0].box
    assert max(abs(a - b) for a, b in zip(box, (181, 62, 268, 172), strict=True)) < 4


def test_pulled_classifier_records_its_bf16_check_and_bf16_answers_alike(
    pulled_home: Path, photos: dict[str, bytes]
) -> None:
    package = _package(pulled_home, "efficientnet-lite0")
    check = package.manifest.runtime.bf16_checked
    assert isinstance(check, Bf16Check)
    assert check.images == 6 and check.top1_agreement == 1.0
    choice = RuntimeChoice.resolve(package.runtime, "openvino", "bf16")
    assert choice.precision == "bf16"
    model = load_task_model(package, 1, choice)
    for name, index in (("coffee", 967), ("china", 698)):
        image = decode(photos[name], Limits(), model.min_side)
        assert int(np.argmax(model.infer([model.prepare(image, {})])[0])) == index
