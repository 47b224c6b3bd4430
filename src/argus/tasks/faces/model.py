"""Faces: MTCNN boxes, scores and five landmarks; optional aligned 112x112 crops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from argus.engines import RuntimeChoice
from argus.images import DecodedImage, png_b64
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
        self.sessions = {k: self.session(files[k]) for k in ("pnet", "rnet", "onet")}
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

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> np.ndarray:
        return image.rgb

    def infer(self, prepared: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.cascade.detect(rgb) for rgb in prepared]

    def finish(self, raw: list[Face], image: DecodedImage, params: dict[str, Any]
               ) -> dict[str, Any]:
        faces = []
        for face in raw:
            item = face_dict(face)
            if params.get("crops"):
                item["crop_png"] = png_b64(align_face(image.rgb, face.landmarks, CROP_SIZE))
            faces.append(item)
        return {"faces": faces}
