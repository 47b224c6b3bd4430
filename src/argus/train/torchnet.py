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


Step = tuple[str, list[str], str, dict[str, Any]]
"""(operator, input names, output name, attributes)."""


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxNet(nn.Module):
    """Runs ``graph`` up to the tensor ``until`` (the pooled features, typically)."""

    def __init__(self, model: onnx.ModelProto, until: str) -> None:
        super().__init__()
        graph = model.graph
        self.until = until
        self.input_name = graph.input[0].name
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
        inits = {i.name: i for i in graph.initializer}
        steps: list[Step] = []
        for node in needed:
            inputs, attrs = list(node.input), _attrs(node)
            if node.op_type == "Clip":  # bounds are constants: read once, not per forward
                bounds = [
                    float(numpy_helper.to_array(inits[b]).reshape(-1)[0]) if b in inits else None
                    for b in [*inputs[1:], "", ""][:2]
                ]
                attrs["low"] = -np.inf if bounds[0] is None else bounds[0]
                attrs["high"] = np.inf if bounds[1] is None else bounds[1]
                inputs = inputs[:1]
            steps.append((node.op_type, inputs, node.output[0], attrs))
        self.nodes = _fuse_conv_bn(steps)

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


def _fuse_conv_bn(steps: list[Step]) -> list[Step]:
    """A convolution whose only reader is a batch norm becomes one step: with the statistics
    frozen the norm is a per-channel scale and shift, folded into the convolution's weight and
    bias on every forward (the same values, the gradients still reach the convolution's weight
    and the norm's scale and shift, and the activations are not written and read twice)."""
    readers: dict[str, int] = {}
    for _op, inputs, _out, _attrs in steps:
        for name in inputs:
            readers[name] = readers.get(name, 0) + 1
    fused: list[Step] = []
    for step in steps:
        op, inputs, output, attrs = step
        prev = fused[-1] if fused else None
        if (
            op == "BatchNormalization"
            and prev is not None
            and prev[0] == "Conv"
            and inputs[0] == prev[2]
            and readers.get(prev[2]) == 1
        ):
            conv_inputs = prev[1] + [""] * (3 - len(prev[1]))
            fused[-1] = ("ConvBN", conv_inputs + inputs[1:5], output,
                         {**prev[3], "epsilon": attrs.get("epsilon", 1e-5)})
        else:
            fused.append(step)
    return fused


def _run(op: str, a: list[Any], attrs: dict[str, Any]) -> torch.Tensor:
    if op == "ConvBN":
        x, weight, bias, gamma, beta, mean, var = a
        scale = gamma / torch.sqrt(var + attrs["epsilon"])
        shift = beta - mean * scale + (bias * scale if bias is not None else 0)
        return _run("Conv", [x, weight * scale.reshape(-1, 1, 1, 1), shift], attrs)
    if op == "Conv":
        top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        x = F.pad(a[0], (left, right, top, bottom)) if any((top, left, bottom, right)) else a[0]
        return F.conv2d(x, a[1], a[2] if len(a) > 2 else None,
                        stride=attrs.get("strides", [1, 1]), groups=attrs.get("group", 1))
    if op == "BatchNormalization":  # statistics frozen: always the running ones
        return F.batch_norm(a[0], a[3], a[4], a[1], a[2], training=False,
                            eps=attrs.get("epsilon", 1e-5))
    if op == "Clip":
        return F.hardtanh(a[0], attrs["low"], attrs["high"])  # ReLU6's fused kernel
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
