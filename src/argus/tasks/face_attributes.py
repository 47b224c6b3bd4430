"""Face attributes: MediaPipe's face mesh and iris models on a face crop → smile, mouth open,
eyes open, head yaw/pitch/roll and gaze (a word and a 2-D ray).

The task runs on the crops of a ``mesh_crop`` graph step (one per face of a ``faces`` step,
192x192, eyes level, the face's box enlarged 1.5 times); its answer is in the crop's pixels and
the graph maps it back to the image (:meth:`FaceAttributesModel.to_source`). One batch holds
every face of an image: the mesh network runs on all crops, then the iris network on all eyes
(two per face, cut from the crop at 64x64).

The attributes are geometric measures on the mesh with thresholds, calibrated on a handful of
photos (README, "Faces: smiles, eyes, head pose and gaze"); the thresholds are package options.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from argus.engines import RuntimeChoice
from argus.images import DecodedImage
from argus.manifest import ModelPackage, TaskFields
from argus.tasks import face_geometry as geo
from argus.tasks.base import TaskModel

Array = np.ndarray[Any, Any]
# The share of an eye crop that may lie past the photo's edge (exactly black) with its iris
# still trusted; a whole eye has none, the cut eyes of the test photos 0.4 and 0.7.
MAX_OUTSIDE = 0.1


class FaceAttributesOptions(BaseModel):
    """The ``options`` block of a face-attributes package: the thresholds (see the README for
    how each was chosen)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    """Smallest face-presence score whose attributes are answered (a crop without a face
    answers only its score)."""
    eye_open: float = Field(default=0.1, ge=0.0)
    """Lid-to-lid over corner-to-corner distance above which an eye counts as open."""
    mouth_open: float = Field(default=0.15, ge=0.0)
    """Inner-lip gap over mouth width above which the mouth counts as open."""
    smile_middle: float = Field(default=0.78)
    """Mouth width (over the distance between the eyes' centres) less the corners' drop below
    the upper lip (over mouth width) at which the smile score is 0.5."""
    smile_slope: float = Field(default=20.0, gt=0.0)
    """Steepness of the smile score around its middle."""
    smiling: float = Field(default=0.5, ge=0.0, le=1.0)
    """Smile score from which a face counts as smiling."""
    at_camera: float = Field(default=15.0, ge=0.0, le=90.0)
    """Gaze within this many degrees of straight at the camera is "at the camera"."""
    pitch_offset: float = Field(default=0.0, ge=-45.0, le=45.0)
    """What the head pitch reads, in degrees, for a face looking level at the camera."""
    iris_bias: tuple[float, float] = (-0.025, -0.04)
    """What the iris-in-eye offset (right, down; eye widths) reads for eyes looking straight
    ahead: the right part from mirrored photo pairs (a mirrored face must look the mirrored
    way), the down part from faces looking at the camera (the iris sits above the corners)."""


class FaceAttributesFields(TaskFields):
    options: FaceAttributesOptions = FaceAttributesOptions()


class FaceAttributesModel(TaskModel):
    task = "face-attributes"
    answer_kind = "attributes"
    item_fields = frozenset()  # one face per crop: graph ops read it through attention
    fields = FaceAttributesFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        self.options = package.fields_as(FaceAttributesFields).options
        files = package.onnx_files()
        self.landmark = self.session(files["landmark"])
        self.iris = self.session(files["iris"])
        self.landmark_in = self.landmark.get_inputs()[0].name
        self.iris_in = self.iris.get_inputs()[0].name

    @classmethod
    def to_source(cls, result: dict[str, Any], matrix: Array) -> dict[str, Any]:
        answer = result.get("attributes")
        if not isinstance(answer, dict):
            return result
        return {**result, "attributes": geo.map_attributes(answer, matrix)}

    @property
    def min_side(self) -> int | None:
        return geo.MESH_SIZE

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> Array:
        """The crop (or any image: it is taken as a face crop) at 192x192, RGB in 0..1."""
        rgb = image.rgb
        if rgb.shape[:2] != (geo.MESH_SIZE, geo.MESH_SIZE):
            rgb = cv2.resize(rgb, (geo.MESH_SIZE, geo.MESH_SIZE), interpolation=cv2.INTER_AREA)
        return rgb.astype(np.float32) / 255.0

    def infer(self, prepared: Sequence[Array]) -> list[FaceRaw]:
        batch = np.stack(prepared)
        raw_mesh, raw_flag = self.landmark.run(None, {self.landmark_in: batch})
        meshes = np.asarray(raw_mesh, dtype=np.float64).reshape(len(prepared), 468, 3)
        flags = np.asarray(raw_flag, dtype=np.float64).reshape(len(prepared))
        eyes, matrices = [], []
        for crop, mesh in zip(prepared, meshes, strict=True):
            for eye in ("left", "right"):
                matrix = geo.eye_crop_matrix(mesh, eye)
                eyes.append(cv2.warpAffine(crop, matrix, (geo.EYE_SIZE, geo.EYE_SIZE),
                                           flags=cv2.INTER_LINEAR))
                matrices.append(matrix)
        _contours, raw_iris = self.iris.run(None, {self.iris_in: np.stack(eyes)})
        irises = np.asarray(raw_iris, dtype=np.float64).reshape(len(eyes), 5, 3)
        # Past the photo's edge a crop is exactly black: an eye crop that is partly so shows
        # an eye cut by the edge, whose iris the model guesses (README, Faces).
        seen = [float((eye.max(axis=2) == 0).mean()) <= MAX_OUTSIDE for eye in eyes]
        out = []
        for i, mesh in enumerate(meshes):
            points = []
            for j in (2 * i, 2 * i + 1):
                back = geo.invert(matrices[j])
                xy = geo.apply(back, irises[j, :, :2])
                depth = irises[j, :, 2:] * math.hypot(back[0, 0], back[1, 0])
                points.append(np.concatenate([xy, depth], axis=1))
            out.append(FaceRaw(mesh, sigmoid(flags[i]), np.concatenate(points),
                               (seen[2 * i], seen[2 * i + 1])))
        return out

    def finish(self, raw: FaceRaw, image: DecodedImage, params: dict[str, Any]
               ) -> dict[str, Any]:
        # A whole image taken as a crop: its answer is in its own pixels.
        scale = np.array([image.width / geo.MESH_SIZE, image.height / geo.MESH_SIZE])
        answer = describe_face(raw, self.options, bool(params.get("mesh")))
        if (scale != 1.0).any():
            matrix = np.array([[scale[0], 0.0, 0.0], [0.0, scale[1], 0.0]])
            answer = geo.map_attributes(answer, matrix)
        return {"attributes": answer}

    def infer_tensors(self, inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.landmark.run(None, inputs)
        names = [o.name for o in self.landmark.get_outputs()]
        return dict(zip(names, outputs, strict=True))


@dataclass(frozen=True)
class FaceRaw:
    """What the networks say of one face crop, in its pixels."""

    mesh: Array
    """``[468, 3]``."""
    score: float
    """Face presence, 0..1."""
    iris: Array
    """``[10, 3]``: the image-left eye's five iris points, then the image-right eye's (centre
    first)."""
    eyes_seen: tuple[bool, bool]
    """Whether each eye's crop lies within the photo (left, right as in the image)."""


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def describe_face(raw: FaceRaw, options: FaceAttributesOptions, with_mesh: bool = False
                  ) -> dict[str, Any]:
    """The attributes of one face, in crop pixels; the points themselves too ``with_mesh`` (a
    step parameter: ``params: {mesh: true}``)."""
    mesh, score, iris = raw.mesh, raw.score, raw.iris
    answer: dict[str, Any] = {"score": round(score, 4)}
    xy = mesh[:, :2]
    answer["box"] = geo.rounded(np.concatenate([xy.min(axis=0), xy.max(axis=0)]))
    if with_mesh:
        answer["mesh"] = geo.rounded(mesh)
        answer["iris"] = geo.rounded(iris)
    if score < options.min_score:
        return answer
    pose = geo.head_pose(mesh, options.pitch_offset)
    opening, width, drop = geo.mouth_measures(mesh, pose)
    smile = sigmoid(options.smile_slope * (width - drop - options.smile_middle))
    eyes = {}
    offsets = []
    for k, eye in enumerate(("left", "right")):
        openness = geo.eye_openness(mesh, eye)
        eyes[eye] = {"open": openness > options.eye_open, "openness": round(openness, 3),
                     "in_image": raw.eyes_seen[k]}
        if raw.eyes_seen[k] or not any(raw.eyes_seen):
            offsets.append(geo.iris_offset(mesh, iris[5 * k], eye, pose))
    # Both eyes look the same way; their mean halves each one's error. An eye cut by the
    # photo's edge is left out while the other is whole.
    right, down = np.mean(offsets, axis=0) - np.asarray(options.iris_bias)
    direction = geo.gaze_direction(pose, float(right), float(down))
    yaw, pitch = geo.angles(direction)
    origin = (iris[0, :2] + iris[5, :2]) / 2
    face_width = float(xy[:, 0].max() - xy[:, 0].min())
    end = origin + direction[:2] * 2.0 * face_width
    flat = direction[:2] / max(float(np.linalg.norm(direction[:2])), 1e-9)
    answer.update(
        smile=round(smile, 3),
        smiling=smile >= options.smiling,
        mouth_open=opening > options.mouth_open,
        mouth_opening=round(opening, 3),
        eyes=eyes,
        head={"yaw": round(pose.yaw, 2), "pitch": round(pose.pitch, 2),
              "roll": round(pose.roll, 2)},
        gaze={
            "yaw": round(yaw, 2),
            "pitch": round(pitch, 2),
            "origin": geo.rounded(origin),
            "direction": [round(float(v), 4) for v in flat],
            "end": geo.rounded(end),
            "word": geo.AT_CAMERA if math.hypot(yaw, pitch) <= options.at_camera
            else geo.gaze_word(flat),
            "eye_offset": [round(float(right), 3), round(float(down), 3)],
        },
    )
    return answer
