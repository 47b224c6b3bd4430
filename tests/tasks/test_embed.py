"""The embed task: an image (or each aligned face of a graph) to a unit vector, registered and
asked like any model; the next task after it is one module too."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from argus.db.engine import make_engine, migrate
from argus.errors import BadPackage
from argus.images import Limits, decode
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.server import local_core
from argus.settings import Settings
from argus.tasks import ITEM_KEYS, load_task_model, task_class
from tests.asking import ask_json

DIM = 8


def embed_onnx(path: Path) -> None:
    """Mean colour of a 32x32 crop through a fixed 3x8 projection: a real (if simple)
    embedding, different for differently coloured images."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(7).standard_normal((3, DIM)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["features"]),
        ],
        "embed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", DIM])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


FIELDS: dict[str, Any] = {
    "task": "embed",
    "model": "model.onnx",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3, 32, 32]}],
    "outputs": [{"name": "features", "datatype": "FP32", "shape": [-1, DIM]}],
    "preprocess": {"resize_shorter": 32, "crop": 32, "mean": 0, "std": 255},
    "license": "Apache-2.0",
    "source": {"note": "made by the Argus tests"},
}


@pytest.fixture(scope="module")
def embed_home(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    home = tmp_path_factory.mktemp("embed") / "home"
    shutil.copytree(pulled_home, home, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    src = home.parent / "src"
    src.mkdir()
    embed_onnx(src / "model.onnx")
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    ModelRegistry(engine, PackageStore(settings.packages_dir)).register(
        "embedder", src, FIELDS, actor="test", alias="production"
    )
    engine.dispose()
    (home / "questions").mkdir(exist_ok=True)
    (home / "questions" / "face-vectors.yaml").write_text(textwrap.dedent("""\
        question: face-vectors
        steps:
          faces: {model: mtcnn}
          aligned: {op: align, from: faces, size: 112}
          vectors: {model: embedder, input: aligned, when: "faces.count > 0"}
        answer: [faces, vectors]
        """))
    return home


def ask(home: Path, question: str, data: bytes) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        core = local_core(Settings(home=home))
        try:
            return await ask_json(core, question, data)
        finally:
            await core.close()

    return asyncio.run(main())


def test_a_model_of_the_embed_task_answers_unit_vectors(
    embed_home: Path, photos: dict[str, bytes]
) -> None:
    coffee = ask(embed_home, "embedder", photos["coffee"])
    vector = np.array(coffee["answer"]["embedding"])
    assert vector.shape == (DIM,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    again = np.array(ask(embed_home, "embedder", photos["coffee"])["answer"]["embedding"])
    other = np.array(ask(embed_home, "embedder", photos["rocket"])["answer"]["embedding"])
    assert float(vector @ again) == pytest.approx(1.0, abs=1e-6)
    assert float(vector @ other) < 0.999  # another picture, another vector


def test_a_graph_embeds_every_aligned_face(embed_home: Path, photos: dict[str, bytes]) -> None:
    answer = ask(embed_home, "face-vectors", photos["astronaut"])
    faces = answer["answer"]["faces"]["faces"]
    vectors = answer["answer"]["vectors"]
    assert vectors["count"] == len(faces) == 1
    assert len(vectors["results"][0]["embedding"]) == DIM
    coffee = ask(embed_home, "face-vectors", photos["coffee"])
    assert coffee["steps"]["vectors"]["skipped"] == "when: faces.count > 0 was false"


def test_an_embedding_is_not_a_list_of_items_for_graph_ops() -> None:
    assert "embedding" not in ITEM_KEYS
    assert task_class("embed").item_fields == frozenset()


def test_the_output_named_must_exist(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    embed_onnx(src / "model.onnx")
    package = PackageStore(tmp_path / "store").add(src, {**FIELDS, "name": "e", "output": "nope"})
    with pytest.raises(BadPackage, match="output 'nope' is not one of the model's outputs"):
        load_task_model(package, threads=1)


def test_a_gateway_may_send_the_prepared_row(tmp_path: Path, photos: dict[str, bytes]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    embed_onnx(src / "model.onnx")
    package = PackageStore(tmp_path / "store").add(src, {**FIELDS, "name": "e"})
    preparer = task_class("embed").input_preparer(package)
    assert preparer is not None and preparer.row_shape == (3, 32, 32)
    model = load_task_model(package, threads=1)
    image = decode(photos["china"], Limits(), preparer.min_side)
    np.testing.assert_array_equal(preparer.prepare(image), model.prepare(image, {}))
