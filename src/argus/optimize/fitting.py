"""Weights fitted, layer after layer, to the inputs the int8 model really gives each layer.

``rounding`` chooses a layer's int8 weights for the float model's inputs. In the int8 model a
layer sees other inputs: every layer before it rounds its outputs to uint8 and its weights to
int8. Here each quantized Conv and Gemm of a QDQ model, in graph order, is fitted to make its
output from the inputs the QDQ model gives it (every earlier layer already fitted, its activations
quantized exactly as served) match the float model's output from float inputs:

1. gather, over the calibration inputs, the second moment of the int8 model's input windows
   ``H = Σ x̃·x̃ᵀ`` (``x̃``: the window and a 1 for the bias) and their cross moment with the float
   layer's output ``C = Σ x̃·yᵀ``;
2. refit the float weights and bias by least squares, pulled towards the float weights by a
   ridge (``RIDGE`` times ``H``'s mean diagonal);
3. round them to int8 by ``rounding.compensated`` on the same ``H`` (or ``adaround``), the bias
   last and unrounded, so it absorbs what the rounded weights leave of the mean;
4. write the int8 weights, their scales and the int32 bias (scale: input scale times weight
   scale, as ONNX Runtime's QLinearConv reads it) into the QDQ model.

The layer's inputs are read from the QDQ model run unfused (its QuantizeLinear/DequantizeLinear
pairs are the rounding the fused kernels do), by the QDQ graph's own tensor names: there a
convolution whose ReLU6 was folded into its quantization writes its unclipped, unrounded output
under the ReLU6's name. Fitting every layer at once to the inputs of one earlier int8 model
counts each earlier layer's error twice (once where that layer is fitted to remove it, once where
the later layer is fitted to undo it): on EfficientNet-Lite0 KL to fp32 0.096 against 0.00085 in
sequence, on the calibration photos.

``optimize`` does not use this (issue 21): on EfficientNet-Lite0 with 12 calibration photos the
fit carries little beyond them (held-out 231/234 as before, KL 0.0026 -> 0.0023 with the
defaults here; every layer fitted: 228/234, KL 0.0032). Kept, with its tests, for the next
attempt with more calibration photos.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from argus.optimize import rounding

BATCH = 8
"""Calibration inputs run at once."""
RIDGE = 100.0
"""Share of ``H``'s mean diagonal pulling the refit weights towards the float ones. Chosen on
EfficientNet-Lite0 by fitting on 3 of the 6 calibration photos and reading the other 3 (both
ways): 0.01-1 fit the photos, not the model (their KL to fp32 rose 2-20x); 100 and 10^4 (no
refit: only the rounding and the bias) lowered it."""
MIN_ROWS_PER_WEIGHT = 20.0
"""A layer is fitted only when its calibration input vectors number at least this many times
its weights per output channel (and bias); the others keep the weights they came with. With 12
photos the late 1x1 layers (588 vectors for 1,153 weights) and the classifier (12) fit noise."""
CHANNELS = 32
"""Depthwise channels whose windows are unfolded at once."""


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def _prune(model: Any, outputs: list[str]) -> Any:
    """A copy of ``model`` that computes only ``outputs``: the nodes they depend on."""
    import onnx
    from onnx import helper

    producer = _producers(model.graph)
    needed: set[int] = set()
    todo = list(outputs)
    seen: set[str] = set()
    while todo:
        tensor = todo.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        node = producer.get(tensor)
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            todo.extend(node.input)
    nodes = [n for n in model.graph.node if id(n) in needed]
    used = {t for n in nodes for t in n.input}
    graph = helper.make_graph(
        nodes, model.graph.name,
        [i for i in model.graph.input if i.name in used],
        [helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in outputs],
        [i for i in model.graph.initializer if i.name in used])
    pruned = helper.make_model(graph, opset_imports=model.opset_import)
    pruned.ir_version = model.ir_version
    return pruned


def _session(model: Any) -> Any:
    """Unoptimised, so QDQ pairs run as they are written rather than fused; one thread (the
    runs are a few inputs each, and the machine may be serving)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


class LayerFit:
    """One weighted node's statistics over the calibration inputs: ``H`` and ``C`` (see the
    module's text) and ``Σy²``, so any weights' output error can be told without a run."""

    def __init__(self, node: Any, w: np.ndarray, b: np.ndarray | None) -> None:
        self.node = node
        self.shape = w.shape
        self.kind = node.op_type
        attrs = {a.name: a.i for a in node.attribute if a.type == a.INT}
        groups = attrs.get("group", 1)
        if self.kind == "Gemm" and not attrs.get("transB", 0):
            raise ValueError("Gemm without transB is not fitted")
        if self.kind == "Conv" and (groups not in (1, w.shape[0])
                                    or (groups > 1 and w.shape[1] != 1)):
            raise ValueError("grouped convolutions other than depthwise are not fitted")
        self.depthwise = self.kind == "Conv" and groups > 1
        self.w = w.reshape(w.shape[0], -1).astype(np.float64)
        self.has_bias = b is not None
        self.b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        width = self.w.shape[1] + self.has_bias
        self.h = np.zeros((w.shape[0] if self.depthwise else 1, width, width))
        self.c = np.zeros((w.shape[0], width))
        self.yy = np.zeros(w.shape[0])
        self.rows = 0

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """(n, c, positions, k) for a convolution, (n, 1, 1, k) for a Gemm."""
        if self.kind == "Gemm":
            return x.reshape(x.shape[0], 1, 1, -1)
        return rounding._patches(x, self.node, (self.shape[2], self.shape[3]))

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """``x``: the layer's input as the int8 model gives it; ``y``: the float model's output
        of the layer from its own inputs (n, out, ...)."""
        p = self._windows(x)
        n, out = y.shape[0], y.shape[1]
        y = y.reshape(n, out, -1).astype(np.float64)  # (n, out, positions)
        self.yy += np.square(y).sum(axis=(0, 2))
        if self.depthwise:
            for c in range(0, p.shape[1], CHANNELS):
                part = p[:, c : c + CHANNELS].astype(np.float64)
                if self.has_bias:
                    part = np.concatenate([part, np.ones((*part.shape[:3], 1))], axis=3)
                self.h[c : c + CHANNELS] += np.einsum("ncpi,ncpj->cij", part, part)
                self.c[c : c + CHANNELS] += np.einsum("ncpi,ncp->ci", part,
                                                      y[:, c : c + CHANNELS])
        else:
            v = p.transpose(0, 2, 1, 3).reshape(-1, p.shape[1] * p.shape[3]).astype(np.float64)
            if self.has_bias:
                v = np.concatenate([v, np.ones((len(v), 1))], axis=1)
            self.h[0] += v.T @ v
            self.c += (v.T @ y.transpose(0, 2, 1).reshape(-1, out)).T
        self.rows += n * p.shape[2]

    def _full(self, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([w, b[:, None]], axis=1) if self.has_bias else w

    def error(self, w: np.ndarray, b: np.ndarray) -> float:
        """Σ over the calibration inputs of the squared output error with weights ``w`` (rows)
        and bias ``b``, over Σ y²."""
        full = self._full(w, b)
        h = self.h if self.depthwise else np.broadcast_to(self.h, (len(full), *self.h.shape[1:]))
        quad = np.einsum("oi,oij,oj->o", full, h, full)
        err = quad - 2 * np.einsum("oi,oi->o", full, self.c) + self.yy
        return float(err.sum() / max(self.yy.sum(), 1e-30))

    def fitted(self, ridge: float = RIDGE, how: str = "compensated"
               ) -> tuple[np.ndarray, np.ndarray]:
        """The int8 weights (float, on their grid, in the node's shape) and the float bias."""
        k = self.w.shape[1]
        full = self._full(self.w, self.b)
        idx = np.arange(k)
        scale = self.h[:, idx, idx].mean(axis=1)  # per H
        pull = np.zeros((len(self.h), full.shape[1]))
        # A floor, so a layer with fewer input vectors than weights still has one solution.
        pull[:, :k] = max(ridge, 1e-6) * scale[:, None] + 1e-12
        a = self.h + pull[:, :, None] * np.eye(full.shape[1])
        if self.depthwise:
            rhs = self.c + pull * full
            best = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
        else:
            rhs = self.c + pull[0] * full
            best = np.linalg.solve(a[0], rhs.T).T
        if how == "adaround":
            q = adaround(best, self.h, exact_last=self.has_bias)
        else:
            q = rounding.compensated(best, self.h, exact_last=self.has_bias)
        w, b = (q[:, :k], q[:, k]) if self.has_bias else (q, np.zeros(len(q)))
        return w.reshape(self.shape).astype(np.float32), b


ADAROUND_STEPS = 1500
ADAROUND_REG = 0.01


def adaround(w: np.ndarray, h: np.ndarray, exact_last: bool = False,
             steps: int = ADAROUND_STEPS) -> np.ndarray:
    """Rows of ``w`` on their int8 grid, each weight rounded down or up as chosen by gradient
    descent (Adam) on ``(q - w)ᵀ H (q - w)`` with a rectified-sigmoid relaxation of the choice and
    a term that drives every choice to 0 or 1 (AdaRound's idea, on the layer's quadratic error
    rather than on data). ``exact_last``: the last column is a bias, not rounded: the weights'
    error is measured with the bias at its best for them (the Schur complement of ``H``), which
    it then takes."""
    w = w.astype(np.float64)
    k = w.shape[1] - int(exact_last)
    hw = h[:, :k, :k]
    if exact_last:
        hw = hw - h[:, :k, k:] @ h[:, k:, :k] / h[:, k:, k:]
    shared = len(hw) == 1

    def times_h(d: np.ndarray) -> np.ndarray:
        """Each row of ``d`` times its ``H`` (symmetric)."""
        return d @ hw[0] if shared else np.einsum("oj,oji->oi", d, hw)

    scale = rounding.grid(w[:, :k]).astype(np.float64)[:, None]
    base = np.floor(w[:, :k] / scale)
    frac = w[:, :k] / scale - base
    zeta, gamma = 1.1, -0.1
    # Start where the relaxed choice equals the fraction: h(v) = frac.
    p0 = np.clip((frac - gamma) / (zeta - gamma), 1e-4, 1 - 1e-4)
    v = np.log(p0 / (1 - p0))
    m1, m2 = np.zeros_like(v), np.zeros_like(v)
    near = w[:, :k] - np.rint(w[:, :k] / scale) * scale
    norm = float((times_h(near) * near).sum()) or 1.0
    for step in range(steps):
        sig = 1 / (1 + np.exp(-v))
        soft = np.clip(sig * (zeta - gamma) + gamma, 0, 1)
        err = (base + soft) * scale - w[:, :k]
        grad_soft = 2 * times_h(err) * scale / norm
        warm = step < steps // 5
        beta = 20 - (20 - 2) * max(0.0, (step - steps // 5) / max(1, steps - steps // 5))
        if not warm:
            t = 2 * soft - 1
            grad_soft += ADAROUND_REG * -beta * np.abs(t) ** (beta - 1) * np.sign(t) * 2
        inside = (soft > 0) & (soft < 1)
        grad = grad_soft * (zeta - gamma) * sig * (1 - sig) * inside
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad**2
        v -= 0.01 * (m1 / (1 - 0.9 ** (step + 1))) / (
            np.sqrt(m2 / (1 - 0.999 ** (step + 1))) + 1e-8)
    sig = 1 / (1 + np.exp(-v))
    up = (sig * (zeta - gamma) + gamma) >= 0.5
    q = np.clip(base + up, -rounding.QMAX, rounding.QMAX) * scale
    rows = np.arange(len(w))
    top = np.argmax(np.abs(w[:, :k]), axis=1)
    q[rows, top] = np.sign(w[rows, top]) * rounding.QMAX * scale[:, 0]
    if not exact_last:
        return q
    bias = w[:, k] - np.einsum("oi,oi->o", q - w[:, :k],
                               np.broadcast_to(h[:, k, :k], (len(w), k))) / h[:, k, k]
    return np.concatenate([q, bias[:, None]], axis=1)


def _quantized_layers(qdq: Any) -> list[Any]:
    """The Conv and Gemm nodes of a QDQ model whose input and weight are dequantized int8, in
    graph order."""
    producer = _producers(qdq.graph)
    out = []
    for node in qdq.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 2:
            continue
        x, w = producer.get(node.input[0]), producer.get(node.input[1])
        if x is not None and w is not None and x.op_type == w.op_type == "DequantizeLinear":
            out.append(node)
    return out


def _write(qdq: Any, node: Any, w: np.ndarray, b: np.ndarray) -> None:
    """Put the int8 weights ``w`` (float, on their per-channel grid) and the bias ``b`` into the
    QDQ model's initializers for ``node``."""
    from onnx import numpy_helper

    producer = _producers(qdq.graph)
    inits = {i.name: i for i in qdq.graph.initializer}
    wdq = producer[node.input[1]]
    scale = rounding.grid(w.reshape(w.shape[0], -1)).astype(np.float64)
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    bdq = producer.get(bias) if bias is not None and bias not in inits else None
    if bdq is not None:
        x_scale = numpy_helper.to_array(inits[producer[node.input[0]].input[1]]).astype(np.float32)
        # A channel whose weights are all but zero (dead: its bias alone decides) would need
        # its bias in more int32 steps than there are at input scale x weight scale; as ONNX
        # Runtime does, its weight scale grows until the bias fits.
        least = np.abs(b) * 1.0001 / (float(x_scale) * np.iinfo(np.int32).max)
        scale = np.maximum(scale, least)
    shape = (-1, *([1] * (w.ndim - 1)))
    steps = np.clip(np.rint(w / scale.reshape(shape)), -rounding.QMAX, rounding.QMAX)
    old_scale = numpy_helper.to_array(inits[wdq.input[1]])
    inits[wdq.input[0]].CopyFrom(numpy_helper.from_array(steps.astype(np.int8), wdq.input[0]))
    w_scale = scale.astype(np.float32)
    inits[wdq.input[1]].CopyFrom(numpy_helper.from_array(w_scale.reshape(old_scale.shape),
                                                         wdq.input[1]))
    if bias is None:
        return
    if bdq is None:  # a float bias (a Gemm whose output stays float)
        inits[bias].CopyFrom(numpy_helper.from_array(b.astype(np.float32), bias))
        return
    # ONNX Runtime's own bias scale: input scale x weight scale, in float32.
    b_scale = (x_scale * w_scale).astype(np.float32)
    b_steps = np.clip(np.rint(b / b_scale.astype(np.float64)), np.iinfo(np.int32).min,
                      np.iinfo(np.int32).max)
    inits[bdq.input[0]].CopyFrom(numpy_helper.from_array(b_steps.astype(np.int32), bdq.input[0]))
    inits[bdq.input[1]].CopyFrom(numpy_helper.from_array(b_scale, bdq.input[1]))


def _dequantized(qdq: Any, node: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The weights and bias ``node`` holds in the QDQ model now, as floats."""
    from onnx import numpy_helper

    producer = _producers(qdq.graph)
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}

    def value(tensor: str) -> np.ndarray:
        if tensor in inits:
            return inits[tensor].astype(np.float64)
        dq = producer[tensor]
        steps, scale = inits[dq.input[0]].astype(np.float64), inits[dq.input[1]]
        zero = inits[dq.input[2]].astype(np.float64) if len(dq.input) > 2 else 0
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1 and steps.ndim > 1:
            shape = [1] * steps.ndim
            shape[axis] = -1
            scale, zero = np.reshape(scale, shape), np.reshape(zero, shape) \
                if np.ndim(zero) else zero
        return np.asarray((steps - zero) * scale)

    bias = value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    return value(node.input[1]), bias


def fit_in_sequence(float_path: Path, qdq_path: Path, dest: Path, name: str,
                    rows: list[np.ndarray], ridge: float = RIDGE, sequential: bool = True,
                    only: Callable[[str], bool] | None = None, how: str = "compensated",
                    min_rows_per_weight: float = MIN_ROWS_PER_WEIGHT) -> dict[str, Any]:
    """Write ``qdq_path`` (the QDQ int8 model of ``float_path``, whose nodes keep the float
    model's names) to ``dest`` with every quantized Conv and Gemm's weights and bias fitted as
    the module's text says, over the calibration ``rows`` (inputs named ``name``); what was
    done. ``sequential=False`` reads every layer's inputs from the QDQ model as given (the
    fit "all at once"), for comparison; ``only`` chooses the nodes fitted by name."""
    import onnx
    from onnx import numpy_helper

    fp = onnx.load(str(float_path))
    qdq = onnx.load(str(qdq_path))
    weights = {i.name: i for i in fp.graph.initializer}
    by_name = {n.name: n for n in fp.graph.node if n.name}
    by_weight = {n.input[1]: n for n in fp.graph.node
                 if n.op_type in ("Conv", "Gemm") and len(n.input) > 1 and n.input[1] in weights}
    producer = _producers(qdq.graph)
    floats: dict[str, Any] = {}
    for node in _quantized_layers(qdq):
        # The same node by name, else by its weight (ONNX Runtime names the int8 copy
        # WEIGHT_quantized).
        stored = producer[node.input[1]].input[0]
        source = by_name.get(node.name) or by_weight.get(stored.removesuffix("_quantized"))
        if source is not None and source.op_type == node.op_type:
            floats[node.name or stored] = source
    layers = [n for n in _quantized_layers(qdq) if (n.name or producer[n.input[1]].input[0])
              in floats and (only is None or only(n.name))]
    frozen = qdq if sequential else onnx.load(str(qdq_path))
    done: dict[str, Any] = {}
    for node in layers:
        key = node.name or producer[node.input[1]].input[0]
        source = floats[key]
        w = numpy_helper.to_array(weights[source.input[1]])
        b = (numpy_helper.to_array(weights[source.input[2]])
             if len(source.input) > 2 and source.input[2] in weights else None)
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if has_bias and b is None:  # a bias the int8 model was given (bias correction)
            b = np.zeros(w.shape[0], np.float32)
        try:
            fit = LayerFit(node, w, b if has_bias else None)
        except ValueError as exc:
            done[key] = str(exc)
            continue
        if b is not None and not has_bias:
            done[key] = "the int8 node has no bias to fit"
            continue
        target = _session(_prune(fp, [source.output[0]]))
        given = _session(_prune(frozen, [node.input[0]]))
        for start in range(0, len(rows), BATCH):
            batch = {name: np.stack(rows[start : start + BATCH])}
            fit.add(given.run(None, batch)[0], target.run(None, batch)[0])
        width = fit.w.shape[1] + fit.has_bias
        if fit.rows < min_rows_per_weight * width:
            done[key] = f"{fit.rows} input vectors for {width} weights: left as it was"
            continue
        qw, qb = _dequantized(qdq, node)
        before = fit.error(qw.reshape(len(qw), -1), qb if qb is not None else np.zeros(len(qw)))
        new_w, new_b = fit.fitted(ridge, how)
        after = fit.error(new_w.reshape(len(new_w), -1).astype(np.float64), new_b)
        _write(qdq, node, new_w, new_b)
        done[key] = {"error_before": round(before, 6), "error_after": round(after, 6)}
    onnx.save(qdq, str(dest))
    return {"layers": done, "ridge": ridge, "calibration_inputs": len(rows),
            "sequential": sequential, "rounding": how,
            "min_rows_per_weight": min_rows_per_weight}
