"""A tiny real ONNX classifier (mean colour → 4 classes) registered like any user model, so
tests about queues and pipelines spend their time on the queue, not on inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings

TINY = "tiny"
LABELS = ["red", "green", "blue", "grey"]


def tiny_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array(
        [[4, -2, -2, 0], [-2, 4, -2, 0], [-2, -2, 4, 0]], dtype=np.float32
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def register_tiny(settings: Settings, work: Path) -> None:
    """Register the tiny classifier as model (and question) ``tiny`` in ``settings``' home."""
    work.mkdir(parents=True, exist_ok=True)
    tiny_onnx(work / "model.onnx")
    (work / "labels.txt").write_text("\n".join(LABELS) + "\n")
    fields = {
        "task": "classify",
        "model": "model.onnx",
        "labels": "labels.txt",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3, 32, 32]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 4]}],
        "preprocess": {"resize_shorter": 32, "crop": 32},
        "license": "Apache-2.0",
        "source": {"note": "made by the Argus tests"},
    }
    engine = make_engine(settings.db_url)
    migrate(engine)
    try:
        ModelRegistry(engine, PackageStore(settings.packages_dir)).register(
            TINY, work, fields, actor="test", alias="production"
        )
    finally:
        engine.dispose()
