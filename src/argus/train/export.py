"""A trained classifier as an ordinary model package: the base network's ONNX graph with new
weights where training changed them, the last layer replaced by the new head, the input
resized when fine-tuned at another size, and both outputs (``logits``, ``features``) kept.

Training never re-traces a network: the graph is the base's own, so what was checked about it
(operators, the ``features`` output, the runtimes it runs on) still holds, and only tensors
change. A fine-tuned export is run with ONNX Runtime beside torch on the same images and the
largest difference recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from argus.errors import BadInput
from argus.manifest import ModelPackage
from argus.train.features import FEATURES


def head_node(graph: onnx.GraphProto) -> onnx.NodeProto:
    """The last layer: the Gemm from ``features`` to the first output."""
    scores = graph.output[0].name
    for node in graph.node:
        if node.output and node.output[0] == scores:
            if node.op_type == "Gemm" and node.input[0] == FEATURES:
                return node
            break
    raise BadInput(
        f"the base model's first output {scores!r} is not a Gemm on '{FEATURES}'; "
        "training replaces that layer and needs it"
    )


def _set_dims(value_info: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    shape = value_info.type.tensor_type.shape
    for dim, new in zip(shape.dim, dims, strict=True):
        if isinstance(new, str):
            dim.ClearField("dim_value")
            dim.dim_param = new
        else:
            dim.ClearField("dim_param")
            dim.dim_value = new


def write_onnx(
    base: ModelPackage,
    target: Path,
    head_weight: np.ndarray,
    head_bias: np.ndarray,
    tensors: Mapping[str, np.ndarray] | None = None,
    image_size: int | None = None,
) -> None:
    """The base graph with ``tensors`` replaced by name, the head replaced and (when
    ``image_size``) the input declared at that size."""
    model = onnx.load(str(base.onnx_files()["model"]))
    graph = model.graph
    node = head_node(graph)
    replace = dict(tensors or {})
    transposed = any(a.name == "transB" and a.i == 1 for a in node.attribute)
    replace[node.input[1]] = head_weight if transposed else head_weight.T
    replace[node.input[2]] = head_bias
    seen = set()
    for init in graph.initializer:
        if init.name in replace:
            new = np.ascontiguousarray(replace[init.name], dtype=np.float32)
            init.CopyFrom(numpy_helper.from_array(new, init.name))
            seen.add(init.name)
    missing = set(replace) - seen
    if missing:
        raise BadInput(f"the base graph has no tensors {sorted(missing)[:3]}")
    _set_dims(graph.output[0], ["batch", int(head_weight.shape[0])])
    if image_size is not None:
        _set_dims(graph.input[0], ["batch", 3, image_size, image_size])
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def package_fields(
    base: ModelPackage,
    classes: list[str],
    preprocess: Mapping[str, Any],
    source: Mapping[str, Any],
    description: str,
) -> dict[str, Any]:
    """The manifest fields of the trained package (the store adds ``files`` and ``name``)."""
    width = int(next(o.shape[-1] for o in base.manifest.outputs if o.name == FEATURES))
    crop = int(preprocess["crop"])
    return {
        "task": "classify",
        "description": description,
        # The base's licence covers the weights it started from; the photos are the user's.
        "license": f"{base.manifest.license} (base) + the user's photos",
        "source": dict(source),
        "model": "model.onnx",
        "inputs": [{"name": base.manifest.inputs[0].name, "datatype": "FP32",
                    "shape": [-1, 3, crop, crop]}],
        "outputs": [
            {"name": base.manifest.outputs[0].name, "datatype": "FP32",
             "shape": [-1, len(classes)]},
            {"name": FEATURES, "datatype": "FP32", "shape": [-1, width]},
        ],
        "preprocess": dict(preprocess),
        "postprocess": {"activation": "softmax"},
        "labels": "labels.txt",
        "runtime": {"max_batch_size": base.runtime.max_batch_size,
                    "max_wait_ms": base.runtime.max_wait_ms},
    }


def write_extras(folder: Path, classes: list[str], report: Mapping[str, Any],
                 pictures: Mapping[str, bytes]) -> None:
    """labels.txt, report.json and the report's pictures beside the ONNX file."""
    (folder / "labels.txt").write_text("\n".join(classes) + "\n")
    (folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    for name, data in pictures.items():
        (folder / name).write_bytes(data)
