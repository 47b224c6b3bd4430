"""Convert a float TensorFlow Lite model (MediaPipe's BlazePose, face mesh, iris) to ONNX.

No TensorFlow: the flatbuffer is read with the small ``tflite`` package (the ``convert`` extra)
and the graph written with :class:`~argus.convert.graph.GraphBuilder`, so ONNX Runtime and
OpenVINO run the result and serving never imports this module.

Weights stored as float16, or sparse (a ``DENSIFY`` op in front of a ``DEQUANTIZE``), are
unpacked here and folded into float32 initializers; what is left is the network itself.

Layout: TFLite is NHWC, ONNX's convolutions NCHW. The converted model keeps the TFLite input and
output shapes (NHWC images in, the same tensors out) except for a dynamic batch axis; inside,
every 4-D activation is carried in NCHW and transposed back only where an op depends on the
memory order (``RESHAPE``) or at an output. Layout-free ops (add, activations) follow whatever
layout their input is in.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from argus.convert.graph import ConversionError, GraphBuilder, conv_pads_same

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)

# tflite's TensorType enum values for the types these models hold.
_DTYPES: dict[int, type[np.generic]] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    9: np.int8,
}


def _tflite() -> Any:
    try:
        import tflite
    except ImportError as exc:  # pragma: no cover - the convert extra is part of dev
        raise ConversionError(
            "converting .tflite models needs the 'tflite' package: "
            "pip install 'argus-vision[convert]'"
        ) from exc
    return tflite


def _options(tfl: Any, op: Any, cls_name: str) -> Any:
    table = op.BuiltinOptions()
    opts = getattr(tfl, cls_name)()
    if table is not None:
        opts.Init(table.Bytes, table.Pos)
    return opts


def _index_vector(tfl: Any, kind: int, table: Any) -> np.ndarray:
    """A sparse dimension's segments or indices (int32, uint16 or uint8 vector union)."""
    names = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}
    if kind not in names:
        raise ConversionError(f"unknown sparse index vector type {kind}")
    vec = getattr(tfl, names[kind])()
    vec.Init(table.Bytes, table.Pos)
    return np.asarray(vec.ValuesAsNumpy(), dtype=np.int64)


def densify(values: np.ndarray, shape: list[int], sparsity: Any, tfl: Any) -> np.ndarray:
    """Expand a TFLite sparse tensor (TACO-style: traversal order, optional blocks, per-level
    DENSE or CSR metadata) into its dense array. ``values`` are the stored non-zeros in
    traversal order."""
    order = [int(d) for d in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(d) for d in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    rank = len(shape)
    levels = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    if len(levels) != len(order):
        raise ConversionError("sparse tensor: dim metadata and traversal order differ in length")
    block_size = {
        dim: levels[order.index(rank + i)].DenseSize() for i, dim in enumerate(block_map)
    }
    # Each surviving element: its position in the current level and its traversal coordinates.
    pos = np.zeros(1, np.int64)
    coords: list[np.ndarray] = []
    for level in levels:
        if level.Format() == 0:  # DENSE: every coordinate of this level exists
            size = level.DenseSize()
            coord = np.tile(np.arange(size, dtype=np.int64), len(pos))
            coords = [np.repeat(c, size) for c in coords]
            pos = np.repeat(pos, size) * size + coord
        else:  # SPARSE_CSR: segments[pos]..segments[pos+1] index the stored coordinates
            segments = _index_vector(tfl, level.ArraySegmentsType(), level.ArraySegments())
            indices = _index_vector(tfl, level.ArrayIndicesType(), level.ArrayIndices())
            counts = segments[pos + 1] - segments[pos]
            starts = np.repeat(segments[pos], counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            child = starts + offsets
            coords = [np.repeat(c, counts) for c in coords]
            coord = indices[child]
            pos = child
        coords.append(coord)
    if len(pos) != values.size and levels[-1].Format() == 0:
        raise ConversionError("sparse tensor: stored values do not match its metadata")
    index = [np.zeros(len(pos), np.int64) for _ in range(rank)]
    for level_no, dim in enumerate(order):
        if dim < rank:
            index[dim] += coords[level_no] * block_size.get(dim, 1)
        else:
            index[block_map[dim - rank]] += coords[level_no]
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(index)] = values.reshape(-1)[pos]
    return dense


@dataclass
class _Value:
    """An ONNX tensor standing for a TFLite tensor; ``nchw`` if a 4-D tensor is held as NCHW."""

    name: str
    nchw: bool


class _Converter:
    def __init__(
        self, data: bytes, name: str, dynamic_batch: bool, size_step: int | None = None
    ) -> None:
        self.dynamic_batch = dynamic_batch
        self.size_step = size_step
        self.input_side = 0  # the static input's height (dynamic-size checks)
        self.tfl = _tflite()
        self.model = self.tfl.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(f"{name}: only single-subgraph models are supported")
        self.graph = self.model.Subgraphs(0)
        self.gb = GraphBuilder(name)
        self.consts: dict[int, np.ndarray] = {}
        self.values: dict[int, _Value] = {}
        self._layouts: dict[tuple[str, bool], str] = {}
        self._const_names: set[str] = set()
        names = {v: k for k, v in vars(self.tfl.BuiltinOperator).items() if not k.startswith("_")}
        self.op_names = names
        self._read_constants()

    # --- tensors -------------------------------------------------------------------------
    def shape(self, t: int) -> list[int]:
        return [int(d) for d in self.graph.Tensors(t).ShapeAsNumpy()]

    def _read_constants(self) -> None:
        for t in range(self.graph.TensorsLength()):
            tensor = self.graph.Tensors(t)
            buf = self.model.Buffers(tensor.Buffer())
            if buf is None or buf.DataLength() == 0:
                continue
            if tensor.Type() not in _DTYPES:
                raise ConversionError(
                    f"tensor {tensor.Name()!r} has unsupported type {tensor.Type()}"
                )
            raw = buf.DataAsNumpy().tobytes()
            values = np.frombuffer(raw, dtype=_DTYPES[tensor.Type()])
            if tensor.Sparsity() is not None:
                self.consts[t] = values  # stored non-zeros; DENSIFY expands them
            else:
                self.consts[t] = values.reshape(self.shape(t))

    def value(self, t: int, nchw: bool) -> str:
        """The ONNX name of tensor ``t`` in the wanted layout (4-D only; others as they are)."""
        if t in self.consts:
            arr = self.consts[t]
            if arr.dtype == np.float16:
                arr = arr.astype(np.float32)
            if nchw and arr.ndim == 4:
                arr = arr.transpose(NHWC_TO_NCHW)
            name = f"c{t}.{'nchw' if nchw and arr.ndim == 4 else 'nhwc'}"
            if name not in self._const_names:
                self._const_names.add(self.gb.constant(name, arr))
            return name
        v = self.values[t]
        if v.nchw == nchw or len(self.shape(t)) != 4:
            return v.name
        key = (v.name, nchw)
        if key not in self._layouts:
            perm = NHWC_TO_NCHW if nchw else NCHW_TO_NHWC
            self._layouts[key] = self.gb.node(
                "Transpose", [v.name], f"{v.name}.{'nchw' if nchw else 'nhwc'}", perm=list(perm)
            )
        return self._layouts[key]

    def activation(self, x: str, fused: int) -> str:
        if fused == 0:
            return x
        if fused == 1:
            return self.gb.node("Relu", [x], f"{x}.relu")
        if fused == 3:
            return self.gb.relu6(x)
        raise ConversionError(f"unsupported fused activation {fused}")

    # --- ops ------------------------------------------------------------------------------
    def run(self) -> onnx.ModelProto:
        g = self.graph
        inputs = []
        for i in range(g.InputsLength()):
            t = g.Inputs(i)
            if g.Tensors(t).Type() != 0:
                raise ConversionError(f"{self.gb.name}: only float32 inputs are supported")
            name = self._io_name(t)
            self.values[t] = _Value(name, nchw=False)
            if len(self.shape(t)) == 4:
                self.input_side = self.shape(t)[1]
            inputs.append((name, self._io_shape(t)))
        handlers: dict[str, Callable[[Any, list[int], list[int]], None]] = {
            "CONV_2D": lambda op, ins, outs: self._conv(op, ins, outs, depthwise=False),
            "DEPTHWISE_CONV_2D": lambda op, ins, outs: self._conv(op, ins, outs, depthwise=True),
            "DEQUANTIZE": self._dequantize,
            "DENSIFY": self._densify,
            "PRELU": self._prelu,
            "ADD": self._add,
            "MAX_POOL_2D": self._max_pool,
            "PAD": self._pad,
            "DEPTH_TO_SPACE": self._depth_to_space,
            "RESIZE_BILINEAR": self._resize,
            "RESHAPE": self._reshape,
            "CONCATENATION": self._concat,
            "LOGISTIC": self._logistic,
            "RELU": self._relu,
        }
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = self.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            if kind not in handlers:
                raise ConversionError(f"{self.gb.name}: TFLite op {kind} is not supported")
            ins = [int(x) for x in op.InputsAsNumpy()]
            outs = [int(x) for x in op.OutputsAsNumpy()]
            handlers[kind](op, ins, outs)
        outputs = []
        for i in range(g.OutputsLength()):
            t = g.Outputs(i)
            outputs.append((self._io_name(t), self.value(t, nchw=False), self._io_shape(t)))
        return self.gb.model(inputs, outputs)

    def _io_shape(self, t: int) -> list[int | str]:
        shape: list[int | str] = list(self.shape(t))
        if self.dynamic_batch:
            if shape[0] != 1:
                raise ConversionError(f"{self.gb.name}: an input or output has no batch axis")
            shape[0] = "batch"
        if self.size_step is not None:
            if len(shape) == 4:  # an image: NHWC
                shape[1:3] = ["height", "width"]
            elif len(shape) == 3:  # per-cell answers, flattened over the grids
                shape[1] = "cells"
            else:
                raise ConversionError(f"{self.gb.name}: a {len(shape)}-D input or output "
                                      "cannot take the input's size")
        return shape

    def _strided(self, size: int, stride: int) -> None:
        """In dynamic-size mode, check that a strided op's SAME padding, computed for the
        static size, is the same for every input size that is a multiple of ``size_step``:
        so it is when the static size at this op divides by the stride and every op so far
        has shrunk the input by a factor dividing ``size_step``. (VALID padding has no pads
        to compute; an explicit PAD in front of it is the same for every size.)"""
        if self.size_step is None or stride == 1:
            return
        shrunk = self.input_side // size if size and self.input_side % size == 0 else 0
        if size % stride or not shrunk or self.size_step % (shrunk * stride):
            raise ConversionError(
                f"{self.gb.name}: a stride-{stride} op on a {size}-pixel side pads differently "
                f"for input sizes that are multiples of {self.size_step}"
            )

    def _io_name(self, t: int) -> str:
        return str(self.graph.Tensors(t).Name().decode())

    def _set(self, t: int, name: str, nchw: bool) -> None:
        self.values[t] = _Value(name, nchw)

    def _dequantize(self, op: Any, ins: list[int], outs: list[int]) -> None:
        if ins[0] not in self.consts:
            raise ConversionError("DEQUANTIZE of a computed tensor is not supported")
        if self.consts[ins[0]].dtype != np.float16:
            # int8/uint8 weights would need their scale and zero point: not in these models.
            raise ConversionError(f"{self.gb.name}: quantized (integer) weights are not supported")
        self.consts[outs[0]] = self.consts[ins[0]].astype(np.float32)

    def _densify(self, op: Any, ins: list[int], outs: list[int]) -> None:
        sparsity = self.graph.Tensors(ins[0]).Sparsity()
        self.consts[outs[0]] = densify(self.consts[ins[0]], self.shape(ins[0]), sparsity, self.tfl)

    def _conv(self, op: Any, ins: list[int], outs: list[int], depthwise: bool) -> None:
        opts = _options(
            self.tfl, op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
        )
        weight = self.consts[ins[1]].astype(np.float32)
        # TFLite: conv (O, kh, kw, I), depthwise (1, kh, kw, I*multiplier); ONNX: (O, I/g, kh, kw).
        weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)
        channels = self.shape(ins[0])[3]
        bias = self.consts[ins[2]].astype(np.float32) if len(ins) > 2 and ins[2] >= 0 else None
        _n, height, width, _c = self.shape(ins[0])
        kh, kw = weight.shape[2:]
        dh, dw = opts.DilationHFactor() or 1, opts.DilationWFactor() or 1
        sh, sw = opts.StrideH(), opts.StrideW()
        if opts.Padding() == 0:  # SAME
            self._strided(height, sh)
            self._strided(width, sw)
            top, bottom = conv_pads_same(height, (kh - 1) * dh + 1, sh)
            left, right = conv_pads_same(width, (kw - 1) * dw + 1, sw)
        else:
            top = bottom = left = right = 0
        name = f"t{outs[0]}"
        inputs = [self.value(ins[0], True), self.gb.constant(f"{name}.weight", weight)]
        if bias is not None:
            inputs.append(self.gb.constant(f"{name}.bias", bias))
        y = self.gb.node(
            "Conv", inputs, name, kernel_shape=[kh, kw], strides=[sh, sw],
            pads=[top, left, bottom, right], dilations=[dh, dw],
            group=channels if depthwise else 1,
        )
        self._set(outs[0], self.activation(y, opts.FusedActivationFunction()), True)

    def _prelu(self, op: Any, ins: list[int], outs: list[int]) -> None:
        x = self.values[ins[0]]
        rank = len(self.shape(ins[0]))
        alpha = self.consts[ins[1]].astype(np.float32)
        alpha = alpha.reshape((1,) * (rank - alpha.ndim) + alpha.shape)
        nchw = x.nchw and rank == 4
        if nchw:
            alpha = alpha.transpose(NHWC_TO_NCHW)
        name = f"t{outs[0]}"
        xs = self.value(ins[0], nchw)
        a = self.gb.constant(f"{name}.alpha", alpha)
        # relu(x) - a * relu(-x): the same values as PRelu, faster in onnxruntime (see graph.prelu)
        pos = self.gb.node("Relu", [xs], f"{name}.pos")
        neg = self.gb.node("Relu", [self.gb.node("Neg", [xs], f"{name}.negx")], f"{name}.neg")
        scaled = self.gb.node("Mul", [a, neg], f"{name}.scaled")
        self._set(outs[0], self.gb.node("Sub", [pos, scaled], name), nchw)

    def _add(self, op: Any, ins: list[int], outs: list[int]) -> None:
        opts = _options(self.tfl, op, "AddOptions")
        computed = [t for t in ins if t not in self.consts]
        nchw = (
            bool(computed)
            and len(self.shape(outs[0])) == 4
            and all(self.values[t].nchw for t in computed if len(self.shape(t)) == 4)
        )
        args = []
        for t in ins:
            if t in self.consts and nchw and self.consts[t].ndim < 4:
                arr = self.consts[t].astype(np.float32)
                arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(NHWC_TO_NCHW)
                args.append(self.gb.constant(f"t{outs[0]}.c{t}", arr))
            else:
                args.append(self.value(t, nchw))
        y = self.gb.node("Add", args, f"t{outs[0]}")
        self._set(outs[0], self.activation(y, opts.FusedActivationFunction()), nchw)

    def _max_pool(self, op: Any, ins: list[int], outs: list[int]) -> None:
        opts = _options(self.tfl, op, "Pool2DOptions")
        _n, height, width, _c = self.shape(ins[0])
        kh, kw, sh, sw = opts.FilterHeight(), opts.FilterWidth(), opts.StrideH(), opts.StrideW()
        if opts.Padding() == 0:
            self._strided(height, sh)
            self._strided(width, sw)
            top, bottom = conv_pads_same(height, kh, sh)
            left, right = conv_pads_same(width, kw, sw)
        else:
            top = bottom = left = right = 0
        y = self.gb.node(
            "MaxPool", [self.value(ins[0], True)], f"t{outs[0]}", kernel_shape=[kh, kw],
            strides=[sh, sw], pads=[top, left, bottom, right],
        )
        self._set(outs[0], self.activation(y, opts.FusedActivationFunction()), True)

    def _pad(self, op: Any, ins: list[int], outs: list[int]) -> None:
        pads = self.consts[ins[1]].astype(np.int64)  # (rank, 2): before, after per NHWC axis
        nchw = len(self.shape(ins[0])) == 4
        if nchw:
            pads = pads[list(NHWC_TO_NCHW)]
        name = f"t{outs[0]}"
        p = self.gb.constant(f"{name}.pads", np.concatenate([pads[:, 0], pads[:, 1]]))
        self._set(outs[0], self.gb.node("Pad", [self.value(ins[0], nchw), p], name), nchw)

    def _depth_to_space(self, op: Any, ins: list[int], outs: list[int]) -> None:
        opts = _options(self.tfl, op, "DepthToSpaceOptions")
        # TensorFlow's channel order (block row, block column, channel) is ONNX's DCR mode.
        y = self.gb.node(
            "DepthToSpace", [self.value(ins[0], True)], f"t{outs[0]}",
            blocksize=opts.BlockSize(), mode="DCR",
        )
        self._set(outs[0], y, True)

    def _resize(self, op: Any, ins: list[int], outs: list[int]) -> None:
        opts = _options(self.tfl, op, "ResizeBilinearOptions")
        if opts.AlignCorners():
            mode = "align_corners"
        elif opts.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        n, h, w, c = self.shape(outs[0])
        name = f"t{outs[0]}"
        x = self.value(ins[0], True)
        if self.size_step is not None:
            # Any input size: scale by the static output's ratio, which must be whole.
            _n, in_h, in_w, _c = self.shape(ins[0])
            if h % in_h or w % in_w:
                raise ConversionError(f"{self.gb.name}: a resize by a fraction cannot take "
                                      "the input's size")
            scales = self.gb.constant(
                f"{name}.scales", np.array([1, 1, h // in_h, w // in_w], np.float32)
            )
            y = self.gb.node(
                "Resize", [x, "", scales], name, mode="linear",
                coordinate_transformation_mode=mode,
            )
            self._set(outs[0], y, True)
            return
        if self.dynamic_batch:
            # sizes = (batch, channels) of the input + the static (h, w): no opset-17 Resize
            # takes sizes for some axes only.
            shape = self.gb.node("Shape", [x], f"{name}.inshape", start=0, end=2)
            hw = self.gb.constant(f"{name}.hw", np.array([h, w], np.int64))
            sizes = self.gb.node("Concat", [shape, hw], f"{name}.sizes", axis=0)
        else:
            sizes = self.gb.constant(f"{name}.sizes", np.array([n, c, h, w], np.int64))
        y = self.gb.node(
            "Resize", [x, "", "", sizes], name, mode="linear",
            coordinate_transformation_mode=mode,
        )
        self._set(outs[0], y, True)

    def _reshape(self, op: Any, ins: list[int], outs: list[int]) -> None:
        name = f"t{outs[0]}"
        target = self.shape(outs[0])
        if self.dynamic_batch:
            if target[0] != 1:
                raise ConversionError(f"{self.gb.name}: a RESHAPE folds the batch axis")
            target[0] = 0  # ONNX: copy the input's batch size
        if self.size_step is not None:
            # Per-cell answers flattened over a grid: [1, cells, k], cells from the input's size.
            if len(target) != 3:
                raise ConversionError(f"{self.gb.name}: a {len(target)}-D RESHAPE cannot take "
                                      "the input's size")
            target[1] = -1
        shape = self.gb.constant(f"{name}.shape", np.array(target, np.int64))
        self._set(outs[0], self.gb.node("Reshape", [self.value(ins[0], False), shape], name), False)

    def _concat(self, op: Any, ins: list[int], outs: list[int]) -> None:
        opts = _options(self.tfl, op, "ConcatenationOptions")
        rank = len(self.shape(outs[0]))
        axis = opts.Axis() % rank
        nchw = rank == 4 and all(t not in self.consts and self.values[t].nchw for t in ins)
        if nchw:
            axis = NHWC_TO_NCHW.index(axis)
        y = self.gb.node("Concat", [self.value(t, nchw) for t in ins], f"t{outs[0]}", axis=axis)
        self._set(outs[0], self.activation(y, opts.FusedActivationFunction()), nchw)

    def _logistic(self, op: Any, ins: list[int], outs: list[int]) -> None:
        x = self.values[ins[0]]
        self._set(outs[0], self.gb.node("Sigmoid", [x.name], f"t{outs[0]}"), x.nchw)

    def _relu(self, op: Any, ins: list[int], outs: list[int]) -> None:
        x = self.values[ins[0]]
        self._set(outs[0], self.gb.node("Relu", [x.name], f"t{outs[0]}"), x.nchw)


def convert(
    data: bytes, name: str, dynamic_batch: bool = True, size_step: int | None = None
) -> onnx.ModelProto:
    """The ONNX model (opset 17, float32) computing what the ``.tflite`` flatbuffer ``data``
    computes, with the same input and output names and shapes, except that with
    ``dynamic_batch`` the leading axis (1 in the ``.tflite``) takes any batch size, so tiles or
    scales of one photo run in one call. With ``size_step``, a fully convolutional network
    (a detector answering per grid cell) also takes any input height and width that are
    multiples of ``size_step``: its strided ops must pad alike for all of them (checked), its
    resizes scale by whole factors and its reshapes flatten the grids into one axis of
    ``[batch, cells, k]``; anything else is refused."""
    if data[4:8] != b"TFL3":
        raise ConversionError(f"{name}: not a TFLite model (no TFL3 file identifier)")
    try:
        return _Converter(data, name, dynamic_batch, size_step).run()
    except (struct.error, IndexError) as exc:  # offsets that point past the end of the file
        raise ConversionError(f"{name}: the TFLite flatbuffer is truncated or corrupt") from exc
