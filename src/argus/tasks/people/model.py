"""The ``people`` task: every person with a box, a score and 33 body landmarks.

The networks of one package, as MediaPipe's pose solution runs them: the detector over the whole
image at one or two scales (:mod:`.search`), then the landmark network on each proposed
person's upright crop (:mod:`.landmarks`). The landmark network's presence score is the second
check: a detector candidate it does not see a body in (a cat's face, a pattern at a close scale) is
dropped. A package with a ``face`` network (BlazeFace) has a third: a face must be where the
skeleton puts it (:mod:`.face_check`). Images over ``work_pixels`` are scaled down first, like
the faces task's, which bounds time and memory; answers are in the original image's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from argus.contracts import parse_fraction
from argus.engines import RuntimeChoice
from argus.images import DecodedImage, DecodeSize
from argus.manifest import ModelPackage, TaskFields
from argus.tasks.base import TaskModel
from argus.tasks.people.detector import KEYPOINT_NAMES, STEP
from argus.tasks.people.face_check import FACE_INPUT, face_crop, face_scores
from argus.tasks.people.landmarks import (
    CROP_SIZE,
    LANDMARK_NAMES,
    Region,
    crop,
    landmarks_in_image,
    region,
    visible_box,
)
from argus.tasks.people.search import Candidate, View, candidates, detector_inputs, views


class PeopleOptions(BaseModel):
    """The ``options`` block of a people package."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    """Smallest detector score kept (MediaPipe's own threshold)."""
    iou: float = Field(default=0.3, ge=0.0, le=1.0)
    """Weighted NMS: candidates overlapping the best by more than this are merged into it."""
    max_torso: float = Field(default=5.0, gt=0.0)
    """Longest mid-hip to mid-shoulder distance kept, in face-box widths. A person's is about 3;
    the detector's confident answers on animals (scikit-image's chelsea: 8.5) put the hip far
    away, so they are dropped."""
    min_presence: float = Field(default=0.5, ge=0.0, le=1.0)
    """Smallest pose presence score (the landmark network's) for a candidate to be a person."""
    min_face_score: float = Field(default=0.5, ge=0.0, le=1.0)
    """Smallest face score (BlazeFace's, on the face where the skeleton puts it) for a
    candidate to be a person, in packages with a ``face`` network (MediaPipe's threshold)."""
    min_visibility: float = Field(default=0.5, ge=0.0, le=1.0)
    """Landmarks at least this visible (and present) make the person's box."""
    min_face: float = Field(default=40.0, gt=0.0)
    """The narrowest face, in pixels of the image looked at, that the search must reach."""
    tile_face: float = Field(default=14.0, gt=0.0)
    """The narrowest face the detector finds reliably, in its input's pixels. Alone in a
    224x224 input it finds the test photos' people down to 10; among others fewer (at 11.5, a
    person is lost in two of the tests' collages)."""
    tile_side: int = Field(default=224, ge=STEP)
    """The longest side of a tile of a closer look, in input pixels (rounded up to 32)."""
    tile_overlap: float = Field(default=1.5, ge=0.0)
    """Neighbouring tiles overlap by this many of the smallest faces the scale before finds."""
    max_pixels: int = Field(default=320_000, ge=STEP * STEP)
    """At most this many detector input pixels per image, over all its scales: bounds the
    time (the whole image at 224 is at most 50,176; 1024x768 at the scale that finds 40-pixel
    faces, 384x288, 110,592)."""
    max_people: int = Field(default=16, ge=1, le=256)
    """At most this many candidates get the landmark stage (best detector scores first)."""
    work_pixels: int = Field(default=1_000_000, ge=50_000)
    """Largest image looked at; larger ones are scaled down to this many pixels."""


class PeopleFields(TaskFields):
    options: PeopleOptions = PeopleOptions()


@dataclass
class Prepared:
    """One image as the detector sees it: the (reduced) pixels and its views' inputs."""

    rgb: np.ndarray
    views: list[View]
    inputs: list[tuple[list[View], np.ndarray]]  # the views by scale, with their batch
    min_score: float | None = None  # the request's ``conf``, else the package's ``min_score``


@dataclass
class Found:
    """One image's raw result: the candidates, their regions, the landmark outputs."""

    work_size: tuple[int, int]
    candidates: list[Candidate]
    regions: list[Region]
    landmarks: np.ndarray  # [people, 195]
    presence: np.ndarray  # [people]
    face: np.ndarray | None = None  # [people]: the face check's score, None without one


# The landmarks that say where a body is: nose, shoulders, hips.
CORE = (0, 11, 12, 23, 24)


def same_pose(a: np.ndarray, b: np.ndarray, reach: float = 0.25) -> bool:
    """Whether two skeletons (``[33, 5]``) are one body: the median distance between their
    nose, shoulders and hips (those both see, when at least two are) is under ``reach`` of the
    longer shoulder-to-hip distance. Two views can propose the same person with head boxes
    and hips too far apart to merge before the landmark stage; where both see the body, the
    landmarks agree (hips outside the photo are guessed, and differ)."""
    torso = max(
        float(np.hypot(*(p[[11, 12], :2].mean(axis=0) - p[[23, 24], :2].mean(axis=0))))
        for p in (a, b)
    )
    core = np.array(CORE)
    both = core[(a[core, 3] >= 0.5) & (b[core, 3] >= 0.5)]
    chosen = both if len(both) >= 2 else core
    gap = float(np.median(np.hypot(*(a[chosen, :2] - b[chosen, :2]).T)))
    return gap < reach * max(torso, 1e-6)


def dedupe(people: list[tuple[dict[str, Any], np.ndarray]]) -> list[dict[str, Any]]:
    """Best score first, without the people whose skeleton is one already kept."""
    kept: list[tuple[dict[str, Any], np.ndarray]] = []
    for person, points in sorted(people, key=lambda p: -p[0]["score"]):
        if not any(same_pose(points, other) for _, other in kept):
            kept.append((person, points))
    return [person for person, _ in kept]


class PeopleModel(TaskModel):
    task = "people"
    answer_kind = "people"
    # ``pose``: the 33 landmarks, each {name, x, y, z, visibility, presence} (not ``landmarks``,
    # which names the five [x, y] points of a face that the align op reads).
    item_fields = frozenset(
        {"label", "score", "detector_score", "box", "face_box", "keypoints", "pose"}
    )
    fields = PeopleFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.options = package.fields_as(PeopleFields).options
        files = package.onnx_files()
        # The detector's input (the image's size) and the landmark network's batch (the
        # people) change from image to image: no arena keeps the largest.
        self.detector = self.session(files["detector"], variable_shapes=True)
        self.landmarker = self.session(files["landmarks"], variable_shapes=True)
        self.detector_input = self.detector.get_inputs()[0].name
        self.detector_outputs = [o.name for o in self.detector.get_outputs()]
        self.landmark_input = self.landmarker.get_inputs()[0].name
        # Landmarks, then the presence score (the package keeps just those two, in this order).
        self.landmark_outputs = [o.name for o in self.landmarker.get_outputs()][:2]
        # The face check (revision 4 on): regressors, then scores.
        self.face = self.session(files["face"], variable_shapes=True) if "face" in files else None
        if self.face is not None:
            self.face_input = self.face.get_inputs()[0].name
            self.face_outputs = [o.name for o in self.face.get_outputs()][:2]

    @property
    def max_batch_size(self) -> int:
        return 1  # an image is already a batch: its people

    @property
    def max_wait_ms(self) -> float:
        return 0.0

    @property
    def decode_size(self) -> DecodeSize:
        return DecodeSize(work_pixels=self.options.work_pixels)

    def work_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the detector's views are scaled from."""
        pixels = height * width
        if pixels <= self.options.work_pixels:
            return height, width
        factor = math.sqrt(self.options.work_pixels / pixels)
        return max(1, int(height * factor)), max(1, int(width * factor))

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> Prepared:
        rgb = image.rgb
        height, width = rgb.shape[:2]
        work_h, work_w = self.work_size(height, width)
        if (work_h, work_w) != (height, width):
            rgb = cv2.resize(rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)
        o = self.options
        found = views(work_h, work_w, o.min_face, o.tile_face, o.tile_side, o.max_pixels,
                      o.tile_overlap)
        return Prepared(rgb, found, detector_inputs(rgb, found),
                        parse_fraction("conf", params.get("conf")))

    def infer(self, prepared: Sequence[Prepared]) -> list[Found]:
        return [self.look(p) for p in prepared]

    def look(self, prepared: Prepared, min_score: float | None = None) -> Found:
        """Both stages on one prepared image."""
        o = self.options
        outputs: list[tuple[np.ndarray, np.ndarray]] = []
        seen: list[View] = []
        for tiles, x in prepared.inputs:  # one call per scale: their sizes differ
            boxes, scores = self.detector.run(self.detector_outputs, {self.detector_input: x})
            outputs += zip(boxes, scores, strict=True)
            seen += tiles
        threshold = next(v for v in (min_score, prepared.min_score, o.min_score) if v is not None)
        proposed = candidates(outputs, seen, threshold, o.iou, o.max_torso)
        proposed = proposed[: o.max_people]
        regions = [region(c) for c in proposed]
        size = prepared.rgb.shape[:2]
        if not proposed:
            return Found(size, [], [], np.zeros((0, 195), np.float32), np.zeros(0, np.float32))
        crops = np.empty((len(regions), CROP_SIZE, CROP_SIZE, 3), dtype=np.float32)
        for i, where in enumerate(regions):
            crop(prepared.rgb, where, crops[i])
        landmarks, presence = self.landmarker.run(
            self.landmark_outputs, {self.landmark_input: crops}
        )
        presence = np.asarray(presence).reshape(-1)
        return Found(size, proposed, regions, landmarks, presence,
                     self.check_faces(prepared.rgb, landmarks, regions, presence))

    def check_faces(
        self, rgb: np.ndarray, landmarks: np.ndarray, regions: list[Region], presence: np.ndarray
    ) -> np.ndarray | None:
        """Each candidate's face score (0 for those the landmark network already dropped),
        or None when the package has no face network."""
        if self.face is None:
            return None
        scores = np.zeros(len(regions))
        asked = [i for i in range(len(regions)) if presence[i] >= self.options.min_presence]
        if not asked:
            return scores
        faces = np.empty((len(asked), FACE_INPUT, FACE_INPUT, 3), dtype=np.float32)
        for row, i in enumerate(asked):
            face_crop(rgb, landmarks_in_image(landmarks[i], regions[i]), faces[row])
        regressors, logits = self.face.run(self.face_outputs, {self.face_input: faces})
        scores[asked] = face_scores(regressors, logits)
        return scores

    def finish(self, raw: Found, image: DecodedImage, params: dict[str, Any]) -> dict[str, Any]:
        o = self.options
        work_h, work_w = raw.work_size
        # Answers are in the original image's pixels, whatever size was looked at.
        sx, sy = image.width / work_w, image.height / work_h
        people = []
        for i, candidate in enumerate(raw.candidates):
            presence = float(raw.presence[i])
            if presence < o.min_presence:
                continue
            if raw.face is not None and raw.face[i] < o.min_face_score:
                continue
            points = landmarks_in_image(raw.landmarks[i], raw.regions[i])
            if not nose_in_face(points, candidate.face) or not has_width(points, candidate):
                continue
            points[:, 0] *= sx
            points[:, 1] *= sy
            points[:, 2] *= sx
            box = visible_box(points, o.min_visibility, image.height, image.width)
            if box is None:
                box = region_box(raw.regions[i], sx, sy, image.height, image.width)
            face = candidate.face.reshape(2, 2) * (sx, sy)
            people.append((
                {
                    "label": "person",
                    "score": round(presence, 6),
                    "detector_score": round(candidate.score, 6),
                    "box": box,
                    "face_box": [round(float(v), 2) for v in face.ravel()],
                    "keypoints": {
                        name: [round(float(x * sx), 2), round(float(y * sy), 2)]
                        for name, (x, y) in zip(KEYPOINT_NAMES, candidate.keypoints, strict=True)
                    },
                    "pose": [
                        {
                            "name": name,
                            "x": round(float(p[0]), 2),
                            "y": round(float(p[1]), 2),
                            "z": round(float(p[2]), 2),
                            "visibility": round(float(p[3]), 4),
                            "presence": round(float(p[4]), 4),
                        }
                        for name, p in zip(LANDMARK_NAMES, points, strict=True)
                    ],
                },
                points,
            ))
        return {"people": dedupe(people)}


def nose_in_face(points: np.ndarray, face: np.ndarray, margin: float = 0.5) -> bool:
    """Whether the landmark network put the nose inside the detector's face box (widened by
    ``margin`` of its size each side). A close view of part of a body can make the detector
    propose a person lying sideways whose skeleton the landmark network then fits to the
    arms; its nose lands far from the face the detector saw (biden.jpg's crossed arms)."""
    x1, y1, x2, y2 = (float(v) for v in face)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    x, y = float(points[0, 0]), float(points[0, 1])
    return x1 - dx <= x <= x2 + dx and y1 - dy <= y <= y2 + dy


def has_width(points: np.ndarray, candidate: Candidate, least: float = 0.12) -> bool:
    """Whether the skeleton's shoulders are at least ``least`` of the body's radius apart on
    the image. The landmark network fits a body to anything it is shown and calls it present;
    on thin upright shapes (scikit-learn's china: a pillar) the fit has no width (0.04-0.06,
    where the people of the tests have 0.37-0.52). A person seen exactly side-on has little
    width too and may be dropped."""
    radius = float(np.hypot(*(candidate.keypoints[1] - candidate.keypoints[0])))
    shoulders = float(np.hypot(*(points[11, :2] - points[12, :2])))
    return shoulders >= least * radius


def region_box(where: Region, sx: float, sy: float, height: int, width: int) -> list[float]:
    """The axis-aligned box of a person's region, clipped (when few landmarks are visible)."""
    corners = np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float)
    matrix = where.crop_to_image()
    points = (corners @ matrix[:, :2].T + matrix[:, 2]) * (sx, sy)
    x1, y1 = points.min(axis=0)
    x2, y2 = points.max(axis=0)
    return [
        round(float(max(0.0, x1)), 2),
        round(float(max(0.0, y1)), 2),
        round(float(min(width, x2)), 2),
        round(float(min(height, y2)), 2),
    ]
