"""The people package as pulled, loaded once, and the photos its tests ask about."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from argus.convert import blazepose
from argus.images import DecodedImage, Limits, decode
from argus.tasks import load_task_model
from argus.tasks.people import PeopleModel
from tests.conftest import pulled_package


@pytest.fixture(scope="session")
def people_model(pulled_home: Path) -> PeopleModel:
    loaded = load_task_model(pulled_package(pulled_home, blazepose.NAME), threads=1)
    assert isinstance(loaded, PeopleModel)
    return loaded


def decoded(rgb: np.ndarray) -> DecodedImage:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return decode(buf.getvalue(), Limits())


def ask(model: PeopleModel, rgb: np.ndarray) -> list[dict[str, Any]]:
    """The people task's answer for ``rgb``, through prepare, infer and finish."""
    image = decoded(np.ascontiguousarray(rgb))
    (raw,) = model.infer([model.prepare(image, {})])
    answer: list[dict[str, Any]] = model.finish(raw, image, {})["people"]
    return answer


# Face widths in the source photos (MTCNN's box, measured once), to size people in collages.
FACE_WIDTH = {"astronaut": 87, "biden": 291, "obama": 246, "obama3": 277}
# Face centres in the source photos (x, y), from the same boxes.
FACE_CENTRE = {
    "astronaut": (224, 117), "biden": (573, 363), "obama": (489, 251), "obama3": (776, 434),
}  # fmt: skip


def sources(people_photos: dict[str, bytes]) -> dict[str, np.ndarray]:
    """The photos collages are made of: scikit-image's astronaut and three of face_recognition's
    (obama3 cut before the edge of the next person in it)."""
    import skimage.data

    rgb = {n: np.asarray(Image.open(io.BytesIO(people_photos[n])).convert("RGB"))
           for n in ("biden", "obama", "obama3")}  # fmt: skip
    rgb["obama3"] = rgb["obama3"][:, :1250]
    rgb["astronaut"] = skimage.data.astronaut()
    return rgb


def collage(
    photos: dict[str, np.ndarray], size: tuple[int, int], items: list[tuple[str, int, int, int]]
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """A grey ``size`` (height, width) canvas with each (photo, face width in px, x, y) pasted
    scaled so its face is that wide; returns it and each face's (x, y, width) in it."""
    height, width = size
    canvas = np.full((height, width, 3), 120, dtype=np.uint8)
    faces = []
    for name, face, x, y in items:
        scale = face / FACE_WIDTH[name]
        img = cv2.resize(photos[name], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        canvas[y : y + h, x : x + w] = img[: height - y, : width - x]
        cx, cy = FACE_CENTRE[name]
        faces.append((x + cx * scale, y + cy * scale, float(face)))
    return canvas, faces
