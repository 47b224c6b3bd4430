"""Faces: MTCNN boxes, scores and five landmarks; optional aligned 112x112 crops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from argus.engines import RuntimeChoice
from argus.images import DecodedImage, png_b64
from argus.packages import ModelPackage
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


class FacesModel(TaskModel):
    task = "faces"

    def __init__(
        self, package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
    ) -> None:
        super().__init__(package, threads, choice)
        files = package.onnx_files()
        opts = package.options
        self.sessions = {k: self.session(files[k]) for k in ("pnet", "rnet", "onet")}
        self.cascade = MTCNN(
            self.sessions["pnet"],
            self.sessions["rnet"],
            self.sessions["onet"],
            min_face_size=float(opts.get("min_face_size", 20)),
            thresholds=tuple(opts.get("thresholds", (0.6, 0.7, 0.7))),
            factor=float(opts.get("factor", 0.709)),
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
