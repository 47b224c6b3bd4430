"""Small user models built with onnx.helper, registered next to the real default models."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry, VersionInfo
from argus.settings import Settings
from tests.built_models import heavy_model


def tint_model(path: Path) -> None:
    """A 3-class 'classifier' whose scores are the mean of each colour channel (8x8 input)."""
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 3, 8, 8])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])
    node = helper.make_node("ReduceMean", ["pixels", "axes"], ["scores"], keepdims=0)
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    graph = helper.make_graph([node], "tint", [x], [y], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def register_classifier(
    registry: ModelRegistry, name: str, build: str = "tint", side: int = 8
) -> VersionInfo:
    work = Path(tempfile.mkdtemp(prefix="argus-test-model-"))
    try:
        if build == "tint":
            tint_model(work / "model.onnx")
        else:
            heavy_model(work / "model.onnx", side=side)
        (work / "labels.txt").write_text("red\ngreen\nblue\n")
        fields = {
            "task": "classify",
            "model": "model.onnx",
            "labels": "labels.txt",
            "preprocess": {"resize_shorter": side, "crop": side, "mean": 0, "std": 255},
            "license": "Apache-2.0",
            "source": {"kind": "test", "note": f"built by tests/graphs ({build})"},
        }
        return registry.register(name, work, fields, actor="tests").version
    finally:
        shutil.rmtree(work, ignore_errors=True)


def register_tint(home: Path, database_url: str | None = None) -> VersionInfo:
    settings = Settings(home=home, database_url=database_url)
    engine = make_engine(settings.db_url)
    migrate(engine)
    try:
        return register_classifier(ModelRegistry(engine, PackageStore(settings.packages_dir)),
                                   "tint")
    finally:
        engine.dispose()


@pytest.fixture
def tint_home(home_copy: Path) -> Path:
    """The pulled home plus `tint`, a tiny colour classifier for face crops."""
    register_tint(home_copy)
    return home_copy


@pytest.fixture(scope="session")
def two_faces(photos: dict[str, bytes]) -> bytes:
    """The astronaut twice, side by side: two faces in one image."""
    import io

    from PIL import Image

    one = Image.open(io.BytesIO(photos["astronaut"])).convert("RGB")
    both = Image.new("RGB", (one.width * 2, one.height))
    both.paste(one, (0, 0))
    both.paste(one.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (one.width, 0))
    buf = io.BytesIO()
    both.save(buf, format="JPEG", quality=92)
    return buf.getvalue()
