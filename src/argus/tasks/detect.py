"""Object detection for YOLO exports in the Ultralytics layout.

One output ``[batch, 4 + classes, N]``: per candidate ``cx, cy, w, h`` in input pixels, then one
score per class (no objectness). Preprocessing is an Ultralytics letterbox to the square (or
rectangular) input; decoding is a confidence threshold, per-class NMS and mapping the boxes
back to the original image.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from argus.contracts import parse_fraction
from argus.engines import RuntimeChoice
from argus.errors import BadPackage
from argus.images import DecodedImage
from argus.manifest import ModelPackage, TaskFields
from argus.tasks.base import TaskModel
from argus.tasks.letterbox import letterbox, unletterbox

DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.45
DEFAULT_MAX_DET = 300
MAX_NMS = 30_000  # candidates entering NMS, best first (as Ultralytics)
LAYOUT = "[1, 4 + classes, N] (Ultralytics YOLO detect export)"
INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _static(dim: Any) -> int | None:
    """A fixed positive dimension, or None for a symbolic/unknown one."""
    return dim if isinstance(dim, int) and dim > 0 else None


def _literal(text: str, where: str) -> Any:
    """A Python literal (Ultralytics writes ``{0: 'person', …}``), else JSON/YAML. Never eval."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadPackage(f"{where} is neither a Python literal, JSON nor YAML: {exc}") from exc


def parse_names(value: Any, where: str) -> list[str]:
    """Class names from a list, or a mapping of index → name numbered 0..n-1."""
    data = _literal(value, where) if isinstance(value, str) else value
    if isinstance(data, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in data.items())
        except (TypeError, ValueError) as exc:
            raise BadPackage(f"{where} must map whole-number class indices to names") from exc
        if [i for i, _ in items] != list(range(len(items))):
            raise BadPackage(f"{where} must number its classes 0 to {len(items) - 1} without gaps")
        return [name for _, name in items]
    if isinstance(data, list | tuple) and all(isinstance(n, str | int | float) for n in data):
        return [str(n) for n in data]
    raise BadPackage(
        f"{where} must be a list of class names or a mapping from class index to name, "
        f"not {type(data).__name__}"
    )


def parse_imgsz(value: Any, where: str) -> tuple[int, int]:
    """``640``, ``[640]``, ``[640, 480]`` (height, width) or the same as text."""
    data = _literal(value, where) if isinstance(value, str) else value
    sides = data if isinstance(data, list | tuple) else [data]
    if len(sides) in (1, 2) and all(type(s) is int and s > 0 for s in sides):
        return (sides[0], sides[-1])
    raise BadPackage(f"{where} must be a positive whole number or [height, width], not {value!r}")


def _number(value: Any, key: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"options.{key} must be a number, not {value!r}") from exc
    if not low <= number <= high:
        raise ValueError(f"options.{key} must be between {low} and {high}, not {number}")
    return number


class DetectOptions(BaseModel):
    """The ``options`` block of a detect package (each may also come from the ONNX file)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    conf: float = DEFAULT_CONF
    """Smallest class score kept (a request may ask for another)."""
    iou: float = DEFAULT_IOU
    """NMS: a box overlapping a better one of its class by more than this is dropped."""
    max_det: int = DEFAULT_MAX_DET
    """Most boxes per image."""
    imgsz: tuple[int, int] | None = None
    """(height, width) the model was trained at, for exports without a fixed input size."""
    names: tuple[str, ...] | None = None
    """Class names (else the ONNX metadata's, else the labels file's, else the indices)."""

    @field_validator("conf", "iou", mode="before")
    @classmethod
    def _fraction(cls, value: Any, info: ValidationInfo) -> float:
        return _number(value, str(info.field_name), 0.0, 1.0)

    @field_validator("max_det", mode="before")
    @classmethod
    def _count(cls, value: Any) -> int:
        number = _number(value, "max_det", 1, 100_000)
        if number != int(number):
            raise ValueError(f"options.max_det must be a whole number, not {number}")
        return int(number)

    @field_validator("imgsz", mode="before")
    @classmethod
    def _imgsz(cls, value: Any) -> tuple[int, int]:
        try:
            return parse_imgsz(value, "options.imgsz")
        except BadPackage as exc:
            raise ValueError(exc.message) from None

    @field_validator("names", mode="before")
    @classmethod
    def _names(cls, value: Any) -> list[str]:
        try:
            return parse_names(value, "options.names")
        except BadPackage as exc:
            raise ValueError(exc.message) from None


class DetectFields(TaskFields):
    options: DetectOptions = DetectOptions()


def onnx_metadata(session: Any, path: Path) -> dict[str, str]:
    """The ONNX file's metadata_props (Ultralytics puts ``names`` and ``imgsz`` there)."""
    if hasattr(session, "get_modelmeta"):
        return dict(session.get_modelmeta().custom_metadata_map)
    # Other engines (OpenVINO) do not expose it; an unoptimised ONNX Runtime session reads it.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reader = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(reader.get_modelmeta().custom_metadata_map)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
    out[:, 0] = xywh[:, 0] - half_w
    out[:, 1] = xywh[:, 1] - half_h
    out[:, 2] = xywh[:, 0] + half_w
    out[:, 3] = xywh[:, 1] + half_h
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Greedy NMS, best first: indices of the kept boxes (at most ``max_det``), by score.
    A box is dropped when its IoU with a kept one is above ``iou``."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        iw = (np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])).clip(0)
        ih = (np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])).clip(0)
        inter = iw * ih
        union = areas[best] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def decode_predictions(
    raw: np.ndarray, conf: float, iou: float, max_det: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's ``[4 + classes, N]`` output → (xyxy boxes in input pixels, scores, classes),
    best first, after the confidence threshold and per-class NMS."""
    pred = np.asarray(raw, dtype=np.float64).T
    class_scores = pred[:, 4:]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(pred)), classes]
    chosen = np.flatnonzero(scores > conf)
    if chosen.size > MAX_NMS:
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")[:MAX_NMS]]
    boxes = xywh_to_xyxy(pred[chosen, :4])
    scores, classes = scores[chosen], classes[chosen]
    if not len(boxes):
        return boxes, scores, classes
    # Shifting each class into its own region makes one NMS pass act per class.
    offset = float(boxes.max() - boxes.min()) + 1.0
    kept = nms(boxes + (classes * offset)[:, None], scores, iou, max_det)
    return boxes[kept], scores[kept], classes[kept]


class DetectModel(TaskModel):
    task = "detect"
    answer_kind = "objects"
    item_fields = frozenset({"box", "label", "index", "score"})
    fields = DetectFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        options = package.fields_as(DetectFields).options
        self.conf = options.conf
        self.iou = options.iou
        self.max_det = options.max_det
        path = package.onnx_files()["model"]
        self.ort = self.session(path)
        meta = onnx_metadata(self.ort, path)
        self._check_input(options, meta)
        self.classes = self._check_output()
        self.labels = self._names(options, meta)

    def _check_input(self, options: DetectOptions, meta: dict[str, str]) -> None:
        inputs = self.ort.get_inputs()
        if len(inputs) != 1:
            raise BadPackage(
                f"package {self.package.name}: a detect model takes one image tensor, "
                f"this one has {len(inputs)} inputs"
            )
        spec = inputs[0]
        self.input_name = spec.name
        if spec.type not in INPUT_TYPES:
            raise BadPackage(
                f"package {self.package.name}: input {spec.name} is {spec.type}; "
                "a detect model takes float32 or float16 pixels"
            )
        self.input_dtype = INPUT_TYPES[spec.type]
        shape = list(spec.shape)
        if len(shape) != 4 or _static(shape[1]) not in (3, None):
            raise BadPackage(
                f"package {self.package.name}: input {spec.name} has shape {shape}; "
                "a detect model takes [batch, 3, height, width] RGB"
            )
        batch = _static(shape[0])
        if batch not in (1, None):
            raise BadPackage(
                f"package {self.package.name}: input {spec.name} has a fixed batch of {batch}; "
                "export with batch 1 or a dynamic batch"
            )
        self.dynamic_batch = batch is None
        fixed = (_static(shape[2]), _static(shape[3]))
        configured = options.imgsz
        if configured is None and "imgsz" in meta and None in fixed:
            configured = parse_imgsz(meta["imgsz"], "ONNX metadata imgsz")
        if fixed[0] is not None and fixed[1] is not None:
            if configured is not None and configured != fixed:
                raise BadPackage(
                    f"package {self.package.name}: options.imgsz {list(configured)} contradicts "
                    f"the model's fixed input size {list(fixed)} (height, width)"
                )
            self.input_h, self.input_w = fixed[0], fixed[1]
        elif configured is not None:
            self.input_h, self.input_w = configured
        else:
            raise BadPackage(
                f"package {self.package.name}: the input size of {spec.name} is not fixed "
                f"({shape}); set options.imgsz to the size the model was trained at"
            )

    def _check_output(self) -> int | None:
        """Number of classes (None when the export leaves that dimension symbolic)."""
        outputs = self.ort.get_outputs()
        if len(outputs) != 1:
            raise BadPackage(
                f"package {self.package.name}: a detect model has one output {LAYOUT}; "
                f"this one has {len(outputs)} (a segmentation or pose export?)"
            )
        self.output_name = outputs[0].name
        shape = list(outputs[0].shape)
        rows = _static(shape[1]) if len(shape) == 3 else None
        if len(shape) != 3 or _static(shape[0]) not in (1, None) or (rows is not None and rows < 5):
            raise BadPackage(
                f"package {self.package.name}: output {self.output_name} has shape {shape}; "
                f"a detect model's output is {LAYOUT}, with at least one class"
            )
        return None if rows is None else rows - 4

    def _names(self, options: DetectOptions, meta: dict[str, str]) -> list[str]:
        if options.names is not None:
            names, where = list(options.names), "options.names"
        elif "names" in meta:
            names, where = parse_names(meta["names"], "ONNX metadata names"), "ONNX metadata"
        elif self.package.labels:
            names, where = self.package.labels, "the labels file"
        else:
            return []
        if self.classes is not None and len(names) != self.classes:
            raise BadPackage(
                f"package {self.package.name}: {where} has {len(names)} class names but the "
                f"model's output has {self.classes} classes (4 box rows + one row per class)"
            )
        return names

    @property
    def min_side(self) -> int | None:
        # A shorter side of at least the input's longer side never needs upsampling to fit.
        return max(self.input_h, self.input_w)

    @property
    def max_batch_size(self) -> int:
        return super().max_batch_size if self.dynamic_batch else 1

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> np.ndarray:
        return letterbox(image.rgb, self.input_h, self.input_w)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        feed = {self.input_name: batch.astype(self.input_dtype, copy=False)}
        out = self.ort.run([self.output_name], feed)[0]
        return np.asarray(out, dtype=np.float32)

    def infer(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.dynamic_batch and len(prepared) > 1:
            return list(self._run(np.stack(prepared)))
        # A fixed batch of 1: the batcher may still hand us several images.
        return [self._run(p[None])[0] for p in prepared]

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.ort.run(None, inputs)
        names = [o.name for o in self.ort.get_outputs()]
        return dict(zip(names, outputs, strict=True))

    def _request_conf(self, params: dict[str, Any]) -> float:
        conf = parse_fraction("conf", params.get("conf"))
        return self.conf if conf is None else conf

    def label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else str(index)

    def finish(
        self, raw: np.ndarray, image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        if raw.ndim != 2 or raw.shape[0] < 5:
            raise BadPackage(
                f"package {self.package.name}: the model produced {list(raw.shape)} per image; "
                f"a detect model's output is {LAYOUT}"
            )
        boxes, scores, classes = decode_predictions(
            raw, self._request_conf(params), self.iou, self.max_det
        )
        decoded_h, decoded_w = image.rgb.shape[:2]
        boxes = unletterbox(boxes, decoded_h, decoded_w, self.input_h, self.input_w)
        # Decoded at reduced size: back to the original's pixels.
        boxes[:, [0, 2]] *= image.width / decoded_w
        boxes[:, [1, 3]] *= image.height / decoded_h
        return {
            "objects": [
                {
                    "box": [round(float(v), 2) for v in box],
                    "label": self.label(int(cls)),
                    "index": int(cls),
                    "score": round(float(score), 6),
                }
                for box, score, cls in zip(boxes, scores, classes, strict=True)
            ]
        }
