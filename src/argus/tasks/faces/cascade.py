"""The MTCNN cascade (Zhang et al. 2016) in numpy around three onnxruntime sessions.

This follows facenet-pytorch 2.6.0's ``detect_face`` step by step, so the ONNX models exported by
:mod:`argus.convert.mtcnn` give the same faces as that library does:

1. an image pyramid whose first scale maps ``min_face_size`` onto P-Net's 12-pixel window;
2. P-Net on every scale, windows above ``thresholds[0]``, NMS 0.5 per scale, NMS 0.7 over all,
   box regression, boxes made square;
3. R-Net on 24x24 crops of all candidates, NMS 0.7, regression, square;
4. O-Net on 48x48 crops: score, regression and five landmarks; NMS 0.7 on the smaller area.

Two details matter for agreement with the reference. Resampling is torch's ``interpolate(mode=
"area")``, i.e. adaptive average pooling over whole pixels (bin ``i`` covers
``floor(i*n/m) .. ceil((i+1)*n/m)``). ``cv2.INTER_AREA`` is *not* the same for non-integer ratios
(it weighs fractional pixels; up to 60 grey levels apart at 512 -> 308), so we compute the
torch bins exactly from one summed-area table, which also crops and resizes every candidate
box in one vectorised gather. And the crops are of the box clipped to the image (no padding),
resized to a square, as upstream does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from argus.errors import BadInput, BadPackage, ConfigError

__all__ = ["MTCNN", "Face", "Session", "load_sessions", "nms"]

Array = np.ndarray[Any, Any]

# P-Net scores 12x12 windows every 2 pixels of the scaled image.
_STRIDE = 2
_CELL = 12
# Size of the temporaries when resampling the whole image (see _AreaSampler.whole).
_BAND_BYTES = 1 << 18
# Candidates go through R-Net/O-Net in chunks of this many: bounds memory on busy images
# (O-Net's first feature map is 270 KB per crop) without changing any result.
_CHUNK = 128
# Crop side of R-Net and O-Net; P-Net takes any size.
_CROP = {"rnet": 24, "onet": 48}
_OUTPUTS = {
    "pnet": ("reg", "prob"),
    "rnet": ("reg", "prob"),
    "onet": ("reg", "landmarks", "prob"),
}
_OUTPUT_WIDTHS = {"reg": 4, "landmarks": 10, "prob": 2}


class Session(Protocol):
    """What the cascade needs of a model: onnxruntime's ``InferenceSession`` API."""

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any], /
    ) -> Sequence[Any]: ...

    def get_inputs(self) -> Sequence[Any]: ...

    def get_outputs(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Face:
    """One detected face, in pixel coordinates of the input image.

    ``box`` is (x1, y1, x2, y2) as regressed by O-Net (it may reach past the image edge).
    ``landmarks`` are five (x, y) points: left eye, right eye, nose, left mouth corner, right
    mouth corner, where left and right are as seen in the image (smaller x first on an upright
    frontal face).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "score": self.score,
            "landmarks": [list(p) for p in self.landmarks],
        }


def nms(
    boxes: Array,
    scores: Array,
    threshold: float,
    *,
    overlap: str = "union",
    inclusive: bool = False,
) -> Array:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first.

    A box is dropped when its overlap with a kept, better-scoring box is above ``threshold``.
    ``overlap`` is ``"union"`` (IoU) or ``"min"`` (intersection over the smaller area).
    ``inclusive`` counts pixels the MATLAB way (``x2 - x1 + 1``); torchvision does not.

    Boxes are taken in blocks: one matrix of overlaps with the boxes kept so far and one within
    the block, so the Python loop does a scalar test per box instead of array work per box.
    """
    if overlap not in ("union", "min"):
        raise ValueError(f"overlap must be 'union' or 'min', not {overlap!r}")
    count = len(boxes)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    extra = 1.0 if inclusive else 0.0
    ranked = boxes[order]
    area = (ranked[:, 2] - ranked[:, 0] + extra) * (ranked[:, 3] - ranked[:, 1] + extra)
    kept = np.zeros(count, dtype=bool)
    for start in range(0, count, _NMS_BLOCK):
        block = slice(start, min(start + _NMS_BLOCK, count))
        earlier = np.flatnonzero(kept[:start])
        beaten = _suppresses(ranked, area, earlier, block, threshold, overlap, extra)
        alive = np.logical_not(np.any(beaten, axis=0))
        inside = _suppresses(ranked, area, block, block, threshold, overlap, extra)
        for j in range(len(alive)):
            if alive[j]:
                alive[j + 1 :] &= ~inside[j, j + 1 :]
        kept[block] = alive
    return order[kept]


_NMS_BLOCK = 512


def _suppresses(
    boxes: Array,
    area: Array,
    rows: Array | slice,
    cols: Array | slice,
    threshold: float,
    overlap: str,
    extra: float,
) -> Array:
    """Boolean matrix: does box ``rows[i]`` overlap box ``cols[j]`` by more than ``threshold``?"""
    a, b = boxes[rows], boxes[cols]
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw + extra, 0) * np.maximum(ih + extra, 0)
    area_a, area_b = area[rows][:, None], area[cols][None, :]
    denom = np.minimum(area_a, area_b) if overlap == "min" else area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = inter / denom
    result: Array = ratio > threshold
    return result


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which P-Net's 12-pixel window sees faces from ``min_face_size`` upwards."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales: list[float] = []
    # Repeated multiplication (not factor**k) to reproduce upstream's floating-point values.
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


class _AreaSampler:
    """torch ``interpolate(mode="area")`` of an image and of boxes in it, normalised as upstream.

    Everything comes from one summed-area table, so a bin's sum is four lookups, whatever its size.
    """

    def __init__(self, rgb: Array) -> None:
        height, width = rgb.shape[:2]
        # A fourth (zero) channel makes every gathered pixel 16 bytes, which numpy's take()
        # copies with a fast path; 12-byte RGB pixels go through memmove, 2-3x slower.
        rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
        # 32-bit sums wrap past 2**32 on big images; read as uint32, the differences of four
        # corners are still exact modulo 2**32, i.e. exact for any bin under 16.8M pixels.
        table = cv2.integral(rgba, sdepth=cv2.CV_32S)  # (H + 1, W + 1, 4)
        self._table = table.view(np.uint32)
        self._flat = self._table.reshape(-1, 4)
        self._height = height
        self._width = width

    def whole(self, out_h: int, out_w: int) -> Array:
        """The whole image at ``out_h`` x ``out_w``, as a (1, 3, out_h, out_w) batch."""
        origin = np.zeros(1, dtype=np.int64)
        ys, ye = (b[0] for b in _bins(origin, origin + self._height, out_h))
        xs, xe = (b[0] for b in _bins(origin, origin + self._width, out_w))
        scale = np.float32(0.0078125) / ((ye - ys)[:, None] * (xe - xs)[None, :]).astype(np.float32)
        out = np.empty((1, 3, out_h, out_w), dtype=np.float32)
        # Separable and in bands of output rows: row bins first (table rows copied as blocks),
        # then column bins. Bands keep the temporaries small: multi-megabyte ones are handed
        # back to the OS on free and page-faulted in again on every call, which cost more
        # than the arithmetic.
        band = max(1, _BAND_BYTES // self._table[0].nbytes)
        for top in range(0, out_h, band):
            part = slice(top, top + band)
            rows = np.take(self._table, ye[part], axis=0)
            rows -= np.take(self._table, ys[part], axis=0)
            sums = np.take(rows, xe, axis=1)
            sums -= np.take(rows, xs, axis=1)
            np.multiply(
                sums[..., :3].transpose(2, 0, 1), scale[part], out=out[0, :, part], casting="unsafe"
            )
        out -= np.float32(127.5 * 0.0078125)
        return out

    def crops(self, y0: Array, y1: Array, x0: Array, x1: Array, size: int) -> Array:
        """Windows ``[y0:y1, x0:x1]`` (one per element) each resized to ``size`` x ``size``."""
        ys, ye = _bins(y0, y1 - y0, size)
        xs, xe = _bins(x0, x1 - x0, size)
        stride = self._width + 1
        rows_s = (ys * stride)[:, :, None]
        rows_e = (ye * stride)[:, :, None]
        cols_s = xs[:, None, :]
        cols_e = xe[:, None, :]
        flat = self._flat
        sums = np.take(flat, rows_e + cols_e, axis=0)
        sums -= np.take(flat, rows_s + cols_e, axis=0)
        sums -= np.take(flat, rows_e + cols_s, axis=0)
        sums += np.take(flat, rows_s + cols_s, axis=0)
        counts = (ye - ys)[:, :, None] * (xe - xs)[:, None, :]
        return _normalise(sums, counts)


def _normalise(sums: Array, counts: Array) -> Array:
    """(N, h, w, 4) bin sums and (N, h, w) pixel counts -> the (N, 3, h, w) network input.

    Upstream computes ``(mean - 127.5) * 0.0078125``; ``mean * 2**-7 - 127.5 * 2**-7`` is the
    same up to float32 rounding and lets the division, scaling and NHWC->NCHW copy be one pass.
    """
    scale = np.float32(0.0078125) / counts.astype(np.float32)
    out = np.empty((sums.shape[0], 3, sums.shape[1], sums.shape[2]), dtype=np.float32)
    np.multiply(sums[..., :3].transpose(0, 3, 1, 2), scale[:, None], out=out, casting="unsafe")
    out -= np.float32(127.5 * 0.0078125)
    return out


def _bins(start: Array, size: Array, n_out: int) -> tuple[Array, Array]:
    """Adaptive-pooling bin edges: bin i of a span covers floor(i*n/m) .. ceil((i+1)*n/m)."""
    i = np.arange(n_out, dtype=np.int64)
    size = size.astype(np.int64)[:, None]
    begin = start.astype(np.int64)[:, None]
    return begin + (i * size) // n_out, begin - ((-(i + 1) * size) // n_out)


def _square(boxes: Array) -> Array:
    """Grow each box to a square around its centre (upstream ``rerec``)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * np.float32(0.5) - side * np.float32(0.5)
    out[:, 1] = boxes[:, 1] + h * np.float32(0.5) - side * np.float32(0.5)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: Array, reg: Array) -> Array:
    """Apply R-Net/O-Net box offsets, relative to the inclusive width (upstream ``bbreg``)."""
    w = boxes[:, 2] - boxes[:, 0] + np.float32(1)
    h = boxes[:, 3] - boxes[:, 1] + np.float32(1)
    return boxes + reg * np.stack([w, h, w, h], axis=1)


def _windows(boxes: Array, width: int, height: int) -> tuple[Array, Array, Array, Array, Array]:
    """Pixel windows ``[y0:y1, x0:x1]`` of the boxes clipped to the image (upstream ``pad``).

    Upstream truncates to int, clips the 1-based start and the end, and slices ``[y-1:ey]``.
    The mask says which windows are non-empty; upstream would crash on an empty one.
    """
    t = np.trunc(boxes).astype(np.int64)
    x0 = np.maximum(t[:, 0], 1) - 1
    y0 = np.maximum(t[:, 1], 1) - 1
    x1 = np.minimum(t[:, 2], width)
    y1 = np.minimum(t[:, 3], height)
    valid = (x1 > x0) & (y1 > y0)
    return y0, y1, x0, x1, valid


def load_sessions(models: Mapping[str, str | os.PathLike[str]], threads: int = 1) -> dict[str, Any]:
    """ONNX Runtime sessions for ``{"pnet": path, "rnet": path, "onet": path}``.

    With more than one intra-op thread, worker spinning is turned off: the networks run many
    sub-millisecond ops, and on a shared 2-core machine spinning workers made two threads
    slower than one (about 85 ms vs 45 ms on a 512x512 photo; 30-48 ms without spinning).
    """
    import onnxruntime as ort

    if threads < 1:
        raise ConfigError(f"MTCNN needs at least one thread, not {threads}")
    missing = {"pnet", "rnet", "onet"} - set(models)
    if missing:
        raise BadPackage(f"MTCNN needs the models {', '.join(sorted(missing))}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return {
        name: ort.InferenceSession(str(models[name]), options, providers=["CPUExecutionProvider"])
        for name in ("pnet", "rnet", "onet")
    }


class MTCNN:
    """Face boxes, scores and five landmarks from three ONNX Runtime sessions.

    ``pnet`` must accept any input size; ``rnet`` takes 24x24 and ``onet`` 48x48 crops, with a
    dynamic batch. The sessions are used as given (thread counts are the caller's choice) and
    may be shared: ``detect`` keeps no state between calls.
    """

    def __init__(
        self,
        pnet: Session,
        rnet: Session,
        onet: Session,
        min_face_size: float = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
    ) -> None:
        if not (isinstance(min_face_size, int | float) and math.isfinite(min_face_size)):
            raise ConfigError(f"MTCNN min_face_size must be a number, not {min_face_size!r}")
        if min_face_size < 1:
            raise ConfigError(f"MTCNN min_face_size must be at least 1 pixel, not {min_face_size}")
        if not (isinstance(factor, int | float) and 0 < factor < 1):
            raise ConfigError(f"MTCNN factor must be between 0 and 1 (exclusive), not {factor!r}")
        try:
            levels = tuple(float(t) for t in thresholds)
        except (TypeError, ValueError):
            levels = ()
        if len(levels) != 3 or not all(0 <= t <= 1 for t in levels):
            raise ConfigError(
                f"MTCNN needs three thresholds between 0 and 1 (P-Net, R-Net, O-Net), "
                f"not {thresholds!r}"
            )
        self.min_face_size = float(min_face_size)
        self.thresholds = levels
        self.factor = float(factor)
        self._sessions = {"pnet": pnet, "rnet": rnet, "onet": onet}
        self._inputs = {name: _input_name(name, s) for name, s in self._sessions.items()}

    def detect(self, rgb: Array) -> list[Face]:
        """Faces in an HxWx3 uint8 RGB image, largest box first (as facenet-pytorch orders them)."""
        image = _check_image(rgb)
        height, width = image.shape[:2]
        scales = pyramid_scales(height, width, self.min_face_size, self.factor)
        if not scales:
            return []
        sampler = _AreaSampler(image)
        boxes = self._propose(sampler, scales, height, width)
        if len(boxes):
            boxes = self._refine(sampler, boxes, height, width)
        if not len(boxes):
            return []
        boxes, scores, points = self._output(sampler, boxes, height, width)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.argsort(-area, kind="stable")
        return [
            Face(
                box=(
                    float(boxes[k, 0]),
                    float(boxes[k, 1]),
                    float(boxes[k, 2]),
                    float(boxes[k, 3]),
                ),
                score=float(scores[k]),
                landmarks=tuple((float(x), float(y)) for x, y in points[k]),
            )
            for k in order
        ]

    def _run(self, name: str, batch: Array) -> list[Array]:
        outputs = self._sessions[name].run(list(_OUTPUTS[name]), {self._inputs[name]: batch})
        return [np.asarray(o, dtype=np.float32) for o in outputs]

    def _propose(
        self, sampler: _AreaSampler, scales: list[float], height: int, width: int
    ) -> Array:
        """Stage 1: P-Net windows over the pyramid; square boxes (N, 4) sorted by score."""
        threshold = np.float32(self.thresholds[0])
        found: list[Array] = []
        for scale in scales:
            batch = sampler.whole(int(height * scale + 1), int(width * scale + 1))
            reg, prob = self._run("pnet", batch)
            face = prob[0, 1]
            ys, xs = np.nonzero(face >= threshold)
            if not len(ys):
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            s = np.float32(scale)
            top_left = np.floor((_STRIDE * cells + np.float32(1)) / s)
            bottom_right = np.floor((_STRIDE * cells + np.float32(_CELL)) / s)
            rows = np.concatenate(
                [top_left, bottom_right, face[ys, xs, None], reg[0][:, ys, xs].T], axis=1
            )
            found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), dtype=np.float32)
        rows = np.concatenate(found)
        rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
        w = rows[:, 2] - rows[:, 0]
        h = rows[:, 3] - rows[:, 1]
        boxes = rows[:, :4] + rows[:, 5:9] * np.stack([w, h, w, h], axis=1)
        return np.concatenate([_square(boxes), rows[:, 4:5]], axis=1)

    def _crops(
        self, name: str, sampler: _AreaSampler, boxes: Array, size: int, height: int, width: int
    ) -> tuple[Array, list[Array]]:
        """Run ``name`` on ``size``x``size`` crops of the boxes; (kept boxes, network outputs)."""
        y0, y1, x0, x1, valid = _windows(boxes, width, height)
        if not valid.all():
            boxes, y0, y1, x0, x1 = boxes[valid], y0[valid], y1[valid], x0[valid], x1[valid]
        if not len(boxes):
            empty = [np.zeros((0, _OUTPUT_WIDTHS[o]), np.float32) for o in _OUTPUTS[name]]
            return boxes, empty
        chunks: list[list[Array]] = []
        for start in range(0, len(boxes), _CHUNK):
            part = slice(start, start + _CHUNK)
            batch = sampler.crops(y0[part], y1[part], x0[part], x1[part], size)
            chunks.append(self._run(name, batch))
        outputs = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
        return boxes, outputs

    def _refine(self, sampler: _AreaSampler, boxes: Array, height: int, width: int) -> Array:
        """Stage 2: R-Net keeps and corrects the candidates; square boxes (N, 4) by score."""
        boxes, (reg, prob) = self._crops("rnet", sampler, boxes, _CROP["rnet"], height, width)
        score = prob[:, 1]
        passed = score > self.thresholds[1]
        boxes, score, reg = boxes[passed, :4], score[passed], reg[passed]
        keep = nms(boxes, score, 0.7)
        boxes = _regress(boxes[keep], reg[keep])
        return np.concatenate([_square(boxes), score[keep, None]], axis=1)

    def _output(
        self, sampler: _AreaSampler, boxes: Array, height: int, width: int
    ) -> tuple[Array, Array, Array]:
        """Stage 3: O-Net's final boxes (N, 4), scores (N,) and landmarks (N, 5, 2)."""
        boxes, (reg, marks, prob) = self._crops(
            "onet", sampler, boxes, _CROP["onet"], height, width
        )
        score = prob[:, 1]
        passed = score > self.thresholds[2]
        boxes, score, reg, marks = boxes[passed, :4], score[passed], reg[passed], marks[passed]
        w = boxes[:, 2:3] - boxes[:, 0:1] + np.float32(1)
        h = boxes[:, 3:4] - boxes[:, 1:2] + np.float32(1)
        # Landmarks are relative to the (square) box O-Net saw, with upstream's 1-based shift.
        px = w * marks[:, :5] + boxes[:, 0:1] - np.float32(1)
        py = h * marks[:, 5:] + boxes[:, 1:2] - np.float32(1)
        points = np.stack([px, py], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes, score, 0.7, overlap="min", inclusive=True)
        return boxes[keep], score[keep], points[keep]


def _input_name(name: str, session: Session) -> str:
    """The session's input name, after checking it is the network the cascade expects there."""
    inputs = list(session.get_inputs())
    outputs = {o.name for o in session.get_outputs()}
    if len(inputs) != 1:
        raise BadPackage(f"MTCNN {name} must have one input, it has {len(inputs)}")
    missing = set(_OUTPUTS[name]) - outputs
    if missing:
        raise BadPackage(
            f"MTCNN {name} lacks the outputs {', '.join(sorted(missing))} "
            f"(it has {', '.join(sorted(outputs)) or 'none'}); was it built by argus.convert.mtcnn?"
        )
    shape = list(inputs[0].shape)
    side = _CROP.get(name)
    fixed = [d if isinstance(d, int) else None for d in shape[1:]]
    expected = [3, side, side]
    if len(shape) != 4 or fixed != expected:
        want = "3 x any x any" if side is None else f"3 x {side} x {side}"
        raise BadPackage(f"MTCNN {name} must take N x {want} images, its input is {shape}")
    return str(inputs[0].name)


def _check_image(rgb: Any) -> Array:
    if not isinstance(rgb, np.ndarray):
        raise BadInput(f"MTCNN needs a numpy image, not {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadInput(f"MTCNN needs an HxWx3 RGB image, not an array of shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise BadInput(f"MTCNN needs 8-bit pixels (uint8), not {rgb.dtype}")
    return np.ascontiguousarray(rgb)
