"""The task registry: one table of task classes, each declaring its name, its answer and its
manifest fields, checked against what real packages of each task load and answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from argus.db.engine import make_engine
from argus.errors import BadPackage
from argus.images import Limits, decode
from argus.manifest import TaskFields
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from argus.tasks import TASKS, TaskModel, load_task_model, task_class
from tests.models.test_packages import FIELDS, make_src
from tests.tasks.test_detect import candidates, package, yolo_onnx
from tests.tasks.test_embed import FIELDS as EMBED_FIELDS
from tests.tasks.test_embed import embed_onnx


@pytest.fixture(scope="module")
def loaded(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TaskModel]:
    """One loaded model per task: the pulled default models, and a YOLO-layout detect model
    (no detector is bundled) whose one candidate box survives on any image."""
    settings = Settings(home=pulled_home)
    engine = make_engine(settings.db_url)
    store = PackageStore(settings.packages_dir)
    registry = ModelRegistry(engine, store)
    models = {}
    for name in registry.names():
        pkg = store.load(registry.resolve(name).digest)
        models[pkg.task] = load_task_model(pkg, threads=1)
    engine.dispose()
    work = tmp_path_factory.mktemp("detect")
    block = candidates(2, (32, 32, 20, 16, 1, 0.9))
    models["detect"] = load_task_model(package(work, yolo_onnx(work / "m.onnx", block)), 1)
    src = tmp_path_factory.mktemp("embed")
    embed_onnx(src / "model.onnx")
    embedder = store.add(src, {**EMBED_FIELDS, "name": "embedder"})
    models["embed"] = load_task_model(embedder, 1)
    return models


def test_each_name_maps_to_the_class_that_declares_it() -> None:
    assert list(TASKS) == [
        "classify", "detect", "embed", "faces", "people", "text", "face-attributes"
    ]
    for name, cls in TASKS.items():
        assert task_class(name) is cls
        assert issubclass(cls, TaskModel) and cls.task == name
        assert cls.answer_kind
        assert issubclass(cls.fields, TaskFields) and cls.fields is not TaskFields
    kinds = [cls.answer_kind for cls in TASKS.values()]
    assert len(set(kinds)) == len(kinds)  # an answer's key says which task gave it


def test_an_unknown_task_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(BadPackage, match=r"unknown task 'pose'; known tasks: ") as refused:
        task_class("pose")
    assert all(name in refused.value.message for name in TASKS)
    with pytest.raises(BadPackage, match=r"unknown task 'poetry'; known tasks: classify, detect"):
        PackageStore(tmp_path / "store").add(make_src(tmp_path), {**FIELDS, "task": "poetry"})


def test_every_task_loads_a_real_package_of_its_kind(loaded: dict[str, TaskModel]) -> None:
    assert set(loaded) == set(TASKS)
    for name, model in loaded.items():
        assert type(model) is TASKS[name]
        assert model.package.task == name
        assert isinstance(model.package.fields, TASKS[name].fields)


def test_answers_hold_the_declared_kind_and_item_fields(
    loaded: dict[str, TaskModel], photos: dict[str, bytes]
) -> None:
    for name, model in loaded.items():
        cls = TASKS[name]
        image = decode(photos["astronaut"], Limits(), model.min_side)
        raw = model.infer([model.prepare(image, {})])[0]
        answer = model.finish(raw, image, {})
        assert list(answer) == [cls.answer_kind, *cls.answer_extras], name
        items = answer[cls.answer_kind]
        assert items, f"{name} found nothing on the astronaut photo"
        if isinstance(items, dict):  # one face's attributes (the photo taken as a face crop)
            assert {"score", "box"} <= set(items), name
            continue
        for item in items:
            if cls.item_fields:  # a list of items (labels, objects, faces)
                assert set(item) == cls.item_fields, name
            else:  # a vector (embed)
                assert isinstance(item, float), name


def test_a_prepared_input_is_one_row_of_the_models_single_input(
    loaded: dict[str, TaskModel], photos: dict[str, bytes]
) -> None:
    preparing = [name for name, cls in TASKS.items() if cls.takes_prepared_input]
    assert preparing == ["classify", "embed"]
    for name in preparing:
        model = loaded[name]
        (spec,) = model.package.manifest.inputs
        image = decode(photos["coffee"], Limits(), model.min_side)
        row = model.prepare(image, {})
        assert row.shape == spec.shape[1:] and spec.shape[0] == -1
        outputs = model.infer_tensors({spec.name: row[None]})
        assert list(outputs) == [o.name for o in model.package.manifest.outputs]
        logits = outputs[model.package.manifest.outputs[0].name][0]
        best = int(np.argmax(model.infer([row])[0]))
        assert int(np.argmax(logits)) == best


def test_task_fields_default_when_a_manifest_leaves_them_out() -> None:
    for cls in TASKS.values():
        fields = cls.fields.parse({})
        assert fields == cls.fields.parse({name: None for name in cls.fields.model_fields})
