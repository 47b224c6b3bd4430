"""An ONNX image network as a torch module, for fine-tuning: the graph's nodes run in order
with torch ops, its initializers become parameters (BatchNorm statistics stay buffers, frozen).

Covers the operators the bundled classifiers use (convolution, batch norm, clip/ReLU, the
element-wise ops, pooling, flatten, Gemm); any other makes fine-tuning refuse the base with a
sentence saying which. Needs the ``train`` extra (torch); serving never imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from argus.errors import BadInput

SUPPORTED = frozenset(
    {"Conv", "BatchNormalization", "Clip", "Relu", "Add", "Sub", "Mul", "Neg",
     "GlobalAveragePool", "Flatten", "Gemm"}
)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxNet(nn.Module):
    """Runs ``graph`` up to the tensor ``until`` (the pooled features, typically)."""

    def __init__(self, model: onnx.ModelProto, until: str) -> None:
        super().__init__()
        graph = model.graph
        self.until = until
        self.input_name = graph.input[0].name
        self.nodes: list[tuple[str, list[str], str, dict[str, Any]]] = []
        needed = self._nodes_to(graph, until)
        unsupported = sorted({n.op_type for n in needed} - SUPPORTED)
        if unsupported:
            raise BadInput(f"fine-tuning cannot run the base's {', '.join(unsupported)} nodes")
        stats = {i for n in needed if n.op_type == "BatchNormalization" for i in n.input[3:5]}
        self.params = nn.ParameterList()
        self.index: dict[str, int] = {}
        self.constants: dict[str, torch.Tensor] = {}
        used = {i for n in needed for i in n.input}
        for init in graph.initializer:
            if init.name not in used:
                continue
            value = torch.from_numpy(np.array(numpy_helper.to_array(init), dtype=np.float32))
            if init.name in stats or value.ndim == 0:
                buffer = f"const{len(self.constants)}"
                self.register_buffer(buffer, value)
                self.constants[init.name] = value
            else:
                self.index[init.name] = len(self.params)
                self.params.append(nn.Parameter(value))
        for node in needed:
            self.nodes.append((node.op_type, list(node.input), node.output[0], _attrs(node)))

    @staticmethod
    def _nodes_to(graph: onnx.GraphProto, until: str) -> list[onnx.NodeProto]:
        for k, node in enumerate(graph.node):
            if until in node.output:
                return list(graph.node[: k + 1])
        raise BadInput(f"the base graph computes no tensor named {until!r}")

    def tensor(self, name: str, values: dict[str, torch.Tensor]) -> torch.Tensor:
        if name in values:
            return values[name]
        if name in self.index:
            return self.params[self.index[name]]
        return self.constants[name]

    def trained_tensors(self) -> dict[str, np.ndarray]:
        """Every parameter by its initializer name, as numpy (for the export)."""
        return {n: self.params[i].detach().cpu().numpy() for n, i in self.index.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for op, inputs, output, attrs in self.nodes:
            args = [self.tensor(i, values) if i else None for i in inputs]
            values[output] = _run(op, args, attrs)
        return values[self.until]


def _run(op: str, a: list[Any], attrs: dict[str, Any]) -> torch.Tensor:
    if op == "Conv":
        top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        x = F.pad(a[0], (left, right, top, bottom)) if any((top, left, bottom, right)) else a[0]
        return F.conv2d(x, a[1], a[2] if len(a) > 2 else None,
                        stride=attrs.get("strides", [1, 1]), groups=attrs.get("group", 1))
    if op == "BatchNormalization":  # statistics frozen: always the running ones
        return F.batch_norm(a[0], a[3], a[4], a[1], a[2], training=False,
                            eps=attrs.get("epsilon", 1e-5))
    if op == "Clip":
        return torch.clamp(a[0], min=a[1] if len(a) > 1 else None,
                           max=a[2] if len(a) > 2 else None)
    if op == "Relu":
        return F.relu(a[0])
    if op == "Add":
        return a[0] + a[1]
    if op == "Sub":
        return a[0] - a[1]
    if op == "Mul":
        return a[0] * a[1]
    if op == "Neg":
        return -a[0]
    if op == "GlobalAveragePool":
        return a[0].mean(dim=(2, 3), keepdim=True)
    if op == "Flatten":
        return torch.flatten(a[0], attrs.get("axis", 1))
    if op == "Gemm":
        weight = a[1] if attrs.get("transB", 0) else a[1].T
        return F.linear(a[0], weight, a[2] if len(a) > 2 else None)
    raise BadInput(f"fine-tuning cannot run {op} nodes")
