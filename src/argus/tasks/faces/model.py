"""Faces: MTCNN boxes, scores and five landmarks; optional aligned 112x112 crops.

The cascade's cost grows with the pixels it is given (a summed-area table and P-Net's maps of
the pyramid's first level), so an image over ``work_pixels`` is scaled down to that many
before it (a JPEG already decoded at the DCT scale closest above), and the faces are mapped
back to the original's coordinates. Faces then need to be ``min_face_size`` pixels at the
reduced scale; photos up to ``work_pixels`` are looked at unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from argus.engines import RuntimeChoice
from argus.images import DecodedImage, DecodeSize, png_b64
from argus.manifest import ModelPackage, TaskFields
from argus.tasks.base import TaskModel
from argus.tasks.faces.align import align_face
from argus.tasks.faces.cascade import MTCNN, Face

CROP_SIZE = 112


def face_dict(face: Face) -> dict[str, Any]:
    return {
        "box": [round(v, 2) for v in face.box],
        "score": round(face.score, 6),
        "landmarks": [[round(x, 2), round(y, 2)] for x, y in face.landmarks],
    }


class FacesOptions(BaseModel):
    """The ``options`` block of a faces package: the cascade's settings (their ranges are
    checked by :class:`MTCNN`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    min_face_size: float = 20
    """Smallest face looked for, in pixels."""
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    """Face scores P-Net, R-Net and O-Net need to pass a window on."""
    factor: float = 0.709
    """Scale step of the image pyramid."""
    work_pixels: int = Field(default=1_000_000, ge=10_000)
    """Largest image the cascade looks at; larger ones are scaled down to this many pixels
    (bounds time and memory per image: at 1 MP under a second and about 120 MB here)."""


class FacesFields(TaskFields):
    options: FacesOptions = FacesOptions()


class FacesModel(TaskModel):
    task = "faces"
    answer_kind = "faces"
    # With ``crops`` asked for, each face also has ``crop_png``.
    item_fields = frozenset({"box", "score", "landmarks"})
    fields = FacesFields

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        files = package.onnx_files()
        options = package.fields_as(FacesFields).options
        self.work_pixels = options.work_pixels
        # P-Net sees a new input size on every level of every pyramid, R-Net and O-Net a new
        # batch size (up to 256 crops) on every image: no arena keeps their largest call.
        self.sessions = {
            k: self.session(files[k], variable_shapes=True) for k in ("pnet", "rnet", "onet")
        }
        self.cascade = MTCNN(
            self.sessions["pnet"],
            self.sessions["rnet"],
            self.sessions["onet"],
            min_face_size=options.min_face_size,
            thresholds=options.thresholds,
            factor=options.factor,
        )

    @property
    def max_batch_size(self) -> int:
        return 1  # the cascade batches internally (all candidates of one image per stage)

    @property
    def max_wait_ms(self) -> float:
        return 0.0

    @property
    def decode_size(self) -> DecodeSize:
        return DecodeSize(work_pixels=self.work_pixels)

    def work_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the cascade looks at for a decoded image of this size."""
        pixels = height * width
        if pixels <= self.work_pixels:
            return height, width
        factor = math.sqrt(self.work_pixels / pixels)
        return max(1, int(height * factor)), max(1, int(width * factor))

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> np.ndarray:
        height, width = image.rgb.shape[:2]
        work_h, work_w = self.work_size(height, width)
        if (work_h, work_w) == (height, width):
            return image.rgb
        return cv2.resize(image.rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)

    def infer(self, prepared: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.cascade.detect(rgb) for rgb in prepared]

    def finish(self, raw: list[Face], image: DecodedImage, params: dict[str, Any]
               ) -> dict[str, Any]:
        height, width = image.rgb.shape[:2]
        work_h, work_w = self.work_size(height, width)
        faces = []
        for face in raw:
            item = face_dict(scaled(face, image.width / work_w, image.height / work_h))
            if params.get("crops"):
                decoded = scaled(face, width / work_w, height / work_h)
                item["crop_png"] = png_b64(align_face(image.rgb, decoded.landmarks, CROP_SIZE))
            faces.append(item)
        return {"faces": faces}


def scaled(face: Face, sx: float, sy: float) -> Face:
    """``face`` in coordinates ``sx`` x ``sy`` times those it was found in."""
    if sx == 1.0 and sy == 1.0:
        return face
    x1, y1, x2, y2 = face.box
    return Face(
        box=(x1 * sx, y1 * sy, x2 * sx, y2 * sy),
        score=face.score,
        landmarks=tuple((x * sx, y * sy) for x, y in face.landmarks),
    )
