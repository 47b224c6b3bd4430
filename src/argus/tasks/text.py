"""Text: the lines of text in an image, each with its quadrilateral, what it says and how sure
the reading is, in reading order, plus the whole text joined (PP-OCR's three networks).

Detection (:mod:`argus.tasks.textdet`) runs on the image at its own size, shrunk only when its
longer side passes ``max_side`` and grown only when its shorter side is under ``min_side``:
PP-OCR's usual practice of enlarging every image to 736 pixels costs several times the
compute on small images and reads no better. An image shrunk for the detector is first looked
at ``first_side`` pixels across, a quarter of the pixels, and that look stands when its text
is large and nothing else in its map looks like text (:func:`textdet.first_look_holds`). Each
line is then cut out of the decoded image (not the detector's copy) straight and 48 pixels
high, turned right way up where the orientation classifier is sure it is upside down, and
read (:mod:`argus.tasks.textrec`); the lines of every image in the batch are shared out over
the call's threads (:meth:`TextModel.read_crops`).

A line's ``score`` is the mean probability of its characters; lines under ``min_score`` (the
request's ``conf``, or a graph step's ``params: {min_score: …}``) are left out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from argus.contracts import parse_fraction
from argus.engines import RuntimeChoice, make_session
from argus.engines.occupancy import OCCUPANCY
from argus.errors import BadPackage
from argus.images import DecodedImage, DecodeSize
from argus.manifest import ModelPackage, TaskFields
from argus.tasks.base import TaskModel
from argus.tasks.textdet import DetectorInput, detector_size, find_lines, first_look_holds
from argus.tasks.textrec import (
    BEST_CLASS,
    BEST_PROBABILITY,
    Columns,
    Reading,
    best_of,
    cut_line,
    in_buckets,
    normalise,
    read_batch,
    text_corners,
    upside_down,
)


class TextOptions(BaseModel):
    """The ``options`` block of a text package."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    characters: str = "characters.json"
    """The package file listing the recogniser's classes after the blank (a JSON list)."""
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    """Lines read with a lower mean character probability are left out."""
    thresh: float = Field(default=0.3, gt=0.0, lt=1.0)
    """Detector probability over which a pixel belongs to a line."""
    box_thresh: float = Field(default=0.5, ge=0.0, le=1.0)
    """Mean detector probability a line's region needs to be kept."""
    unclip_ratio: float = Field(default=1.6, gt=0.0, le=4.0)
    """How far a detected core is grown back to the line's extent (see textdet)."""
    max_side: int = Field(default=960, ge=64, le=4096)
    """The detector's longest input side; larger images are shrunk to it."""
    first_side: int = Field(default=480, ge=0, le=4096)
    """Images larger than ``max_side`` are first looked at this long (0: never); when
    that look holds (see ``first_height`` and ``first_doubt``), it is the one kept."""
    first_height: float = Field(default=16.0, ge=1.0)
    """Every line of a first look kept is at least this many of its pixels high."""
    first_doubt: float = Field(default=0.1, gt=0.0, le=1.0)
    """A first look is not kept where the map reaches this outside its lines."""
    min_side: int = Field(default=64, ge=32, le=1024)
    """Images whose shorter side is under this are enlarged to it for the detector."""
    max_lines: int = Field(default=300, ge=1, le=2000)
    """At most this many lines are read per image (the largest regions first)."""
    orientation_thresh: float = Field(default=0.9, ge=0.5, le=1.0)
    """A line is turned when the classifier says 180 degrees at least this surely."""
    line_batch: int = Field(default=1, ge=1, le=256)
    """Most lines the recogniser reads in one run (of equal width to 8 px; one at a time
    costs less CPU per column here, see textrec)."""


class TextFields(TaskFields):
    options: TextOptions = TextOptions()


@dataclass
class PreparedText:
    """One image ready for the networks: the pixels lines are cut from (the decoded image
    itself, not a copy), the detector's input size, and the first look to take: its size
    and input (an image larger than ``max_side``), or the full look's input."""

    rgb: np.ndarray
    detector: DetectorInput
    first: tuple[DetectorInput, np.ndarray]


@dataclass
class FoundLine:
    corners: np.ndarray  # [4, 2] in decoded pixels: TL, TR, BR, BL
    detection: float
    reading: Reading


def detector_tensor(rgb: np.ndarray, geo: DetectorInput) -> np.ndarray:
    """The detector's ``[1, 3, H, W]`` input: the image resized to ``geo``'s size."""
    h, w = rgb.shape[:2]
    shrink = geo.width * geo.height < w * h
    resized = cv2.resize(rgb, (geo.width, geo.height),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return normalise(resized)[None]


def upright_order(lines: list[FoundLine]) -> list[FoundLine]:
    """Reading order for the text's own way up: when most lines were read turned half a
    circle, the whole image is upside down, and its last line (at the top) is read first."""
    turned = sum(1 for line in lines if line.corners[0, 1] > line.corners[2, 1])
    return lines[::-1] if turned * 2 > len(lines) else lines


class TextModel(TaskModel):
    task = "text"
    answer_kind = "lines"
    item_fields = frozenset({"box", "text", "score"})
    answer_extras = ("text",)
    fields = TextFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.options = package.fields_as(TextFields).options
        files = package.onnx_files()
        missing = {"detector", "recogniser", "orientation"} - set(files)
        if missing:
            raise BadPackage(
                f"a text package needs models: detector, recogniser and orientation; "
                f"{package.name} lacks {', '.join(sorted(missing))}"
            )
        try:
            characters = json.loads(package.file(self.options.characters).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise BadPackage(f"{package.name}: cannot read its character list: {exc}") from exc
        if not isinstance(characters, list) or not all(isinstance(c, str) for c in characters):
            raise BadPackage(f"{package.name}: {self.options.characters} must be a JSON list")
        self.characters: list[str] = characters
        # Every input size differs (images and line widths), so shape-specialised plans
        # would be rebuilt per call.
        self.detector = self.session(files["detector"], variable_shapes=True)
        # Lines are read a batch per thread, each call on one thread of its own (see
        # read_lines), so these two sessions run one thread per call and are shared.
        single = replace(self.choice, lone_threads=0)
        self.recogniser = make_session(files["recogniser"], 1, single, True)
        self.orientation = make_session(files["orientation"], 1, single, True)
        self.line_threads = max(1, threads)
        self.lone_line_threads = max(self.line_threads, self.choice.lone_threads)
        self._pool = (
            ThreadPoolExecutor(self.lone_line_threads - 1, thread_name_prefix="text-lines")
            if self.lone_line_threads > 1 else None
        )
        self._names = {
            role: (s.get_inputs()[0].name, s.get_outputs()[0].name)
            for role, s in (
                ("detector", self.detector),
                ("orientation", self.orientation),
            )
        }
        self._recogniser_input = self.recogniser.get_inputs()[0].name
        outputs = [o.name for o in self.recogniser.get_outputs()]
        # ppocr revision 2 on answers each column's best class and its probability; a
        # package made before (or a user's) answers every class's probability.
        self._best_outputs: list[str] | None = (
            [BEST_CLASS, BEST_PROBABILITY]
            if {BEST_CLASS, BEST_PROBABILITY} <= set(outputs) else None
        )
        if self._best_outputs is None and len(outputs) != 1:
            raise BadPackage(
                f"{package.name}: the recogniser must answer either {BEST_CLASS} and "
                f"{BEST_PROBABILITY}, or one tensor of probabilities; it answers "
                f"{', '.join(outputs)}"
            )

    @property
    def decode_size(self) -> DecodeSize:
        # The detector reads at most max_side pixels across; lines are cut from the decoded
        # image, so a JPEG may be reduced until it is about that size, not below.
        return DecodeSize(work_pixels=self.options.max_side**2)

    def _run(self, role: str, x: np.ndarray) -> np.ndarray:
        session = getattr(self, role)
        inp, out = self._names[role]
        result: np.ndarray = session.run([out], {inp: x})[0]
        return result

    def _orient(self, x: np.ndarray) -> np.ndarray:
        return self._run("orientation", x)

    def _read(self, x: np.ndarray) -> Columns:
        """The recogniser's best class and its probability for every column of ``x``."""
        feeds = {self._recogniser_input: x}
        if self._best_outputs is None:
            return best_of(self.recogniser.run(None, feeds)[0])
        best, probability = self.recogniser.run(self._best_outputs, feeds)
        return best, probability

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> PreparedText:
        # A bad value is refused before any work.
        parse_fraction("min_score", params.get("min_score"))
        rgb = image.rgb
        h, w = rgb.shape[:2]
        opts = self.options
        geo = detector_size(w, h, opts.max_side, opts.min_side)
        if opts.first_side and max(w, h) > opts.max_side and opts.first_side < opts.max_side:
            first = detector_size(w, h, opts.first_side, opts.min_side)
        else:
            first = geo
        return PreparedText(rgb, geo, (first, detector_tensor(rgb, first)))

    def detect(self, item: PreparedText) -> tuple[list[tuple[np.ndarray, float]], DetectorInput]:
        """The lines of one image (corners in its pixels, detection score) and the look they
        were found on: the first, shrunk one when it holds, else the full one."""
        opts = self.options

        def look(geo: DetectorInput, x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
            prob = self._run("detector", x)[0, 0]
            return prob, find_lines(prob, geo, thresh=opts.thresh, box_thresh=opts.box_thresh,
                                    unclip_ratio=opts.unclip_ratio, max_lines=opts.max_lines)

        geo, x = item.first
        prob, lines = look(geo, x)
        if geo == item.detector or first_look_holds(
            prob, geo, lines, min_height=opts.first_height, doubt=opts.first_doubt
        ):
            return lines, geo
        _, lines = look(item.detector, detector_tensor(item.rgb, item.detector))
        return lines, item.detector

    def read_lines(self, prepared: Sequence[PreparedText]) -> list[list[FoundLine]]:
        """Detect the lines of every image, then read all of them together."""
        found = [self.detect(item)[0] for item in prepared]
        found = [[(text_corners(quad), score) for quad, score in lines] for lines in found]
        crops = [cut_line(item.rgb, quad) for item, lines in zip(prepared, found, strict=True)
                 for quad, _ in lines]
        flips, readings = self.read_crops(crops)
        out: list[list[FoundLine]] = []
        line = 0
        for lines in found:
            read = []
            for quad, score in lines:
                # A line read turned: its own top-left corner is the image's bottom-right.
                corners = np.roll(quad, 2, axis=0) if flips[line] else quad
                read.append(FoundLine(corners, score, readings[line]))
                line += 1
            out.append(upright_order(read))
        return out

    def read_crops(self, crops: list[np.ndarray]) -> tuple[list[bool], list[Reading]]:
        """Whether each line was turned upright, and what it says: one batch (by default one
        line) at a time, oriented then read, on as many threads as this call's share of the
        cores, each running the networks on one thread of its own. Lines are small inputs,
        on which ONNX Runtime's operators split over two threads gain far less than two
        lines read at once do (a dense page's lines on two threads: 1.26-1.67x faster than
        batches on two-thread sessions, with other work loading the machine)."""
        opts = self.options
        flips = [False] * len(crops)
        readings = [Reading("", 0.0)] * len(crops)

        def read_batch_of(unit: tuple[int, list[int]]) -> None:
            width, members = unit
            part = [crops[i] for i in members]
            turn = upside_down(self._orient, part, opts.orientation_thresh)
            part = [np.ascontiguousarray(c[::-1, ::-1]) if t else c
                    for c, t in zip(part, turn, strict=True)]
            for i, t, reading in zip(
                members, turn, read_batch(self._read, part, width, self.characters),
                strict=True,
            ):
                flips[i], readings[i] = t, reading

        # Widest batches first, so the last one a thread takes is a short one.
        units = sorted(in_buckets([c.shape[1] for c in crops], opts.line_batch),
                       key=lambda unit: unit[0] * len(unit[1]), reverse=True)
        queue = iter(units)
        taking = threading.Lock()

        def read_until_done() -> None:
            while True:
                with taking:
                    unit = next(queue, None)
                if unit is None:
                    return
                read_batch_of(unit)

        threads = self.line_threads
        if self.lone_line_threads > threads and OCCUPANCY.now <= 1:
            threads = self.lone_line_threads  # a lone request: every core (see engines)
        # This thread and threads - 1 of the pool's (ONNX Runtime lets go of the GIL).
        helpers = [self._pool.submit(read_until_done)
                   for _ in range(min(threads, len(units)) - 1)] if self._pool else []
        try:
            read_until_done()
        finally:
            wait(helpers)
        for helper in helpers:
            helper.result()
        return flips, readings

    def infer(self, prepared: Sequence[PreparedText]) -> list[list[FoundLine]]:
        return self.read_lines(prepared)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def finish(
        self, raw: list[FoundLine], image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        min_score = parse_fraction("min_score", params.get("min_score"))
        if min_score is None:
            min_score = parse_fraction("conf", params.get("conf"))
        if min_score is None:
            min_score = self.options.min_score
        # Boxes are in the original image's pixels even when the JPEG was decoded smaller.
        h, w = image.rgb.shape[:2]
        sx, sy = image.width / w, image.height / h
        lines: list[dict[str, Any]] = []
        texts: list[str] = []
        for line in raw:
            text = line.reading.text.strip()
            if not text or line.reading.score < min_score:
                continue
            corners = line.corners.astype(np.float64) * (sx, sy)
            texts.append(text)
            lines.append(
                {
                    "text": text,
                    "score": round(line.reading.score, 6),
                    "box": [[round(float(x), 1), round(float(y), 1)] for x, y in corners],
                }
            )
        return {"lines": lines, "text": "\n".join(texts)}
