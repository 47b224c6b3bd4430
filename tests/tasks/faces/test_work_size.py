"""The faces task's cost is bounded by ``work_pixels`` (issue 15): a larger image is scaled
down before the cascade and the faces are mapped back to the original's coordinates; photos
under the bound are looked at unchanged."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from argus.images import Limits, decode
from argus.tasks import load_task_model
from argus.tasks.faces import FacesModel
from tests.conftest import pulled_package


@pytest.fixture(scope="module")
def faces(pulled_home: Path) -> FacesModel:
    model = load_task_model(pulled_package(pulled_home, "mtcnn"), threads=1)
    assert isinstance(model, FacesModel)
    return model


def answer(model: FacesModel, data: bytes) -> list[dict[str, object]]:
    image = decode(data, Limits(), model.decode_size)
    raw = model.infer([model.prepare(image, {})])[0]
    faces = model.finish(raw, image, {"crops": True})["faces"]
    assert isinstance(faces, list)
    return faces


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_a_photo_under_the_bound_is_looked_at_unchanged(
    faces: FacesModel, astronaut: np.ndarray
) -> None:
    image = decode(png(astronaut), Limits(), faces.decode_size)
    assert faces.prepare(image, {}) is image.rgb
    direct = faces.cascade.detect(astronaut)
    found = answer(faces, png(astronaut))
    assert [f["box"] for f in found] == [[round(v, 2) for v in f.box] for f in direct]


def test_a_large_image_is_scaled_to_work_pixels_and_mapped_back(
    faces: FacesModel, astronaut: np.ndarray
) -> None:
    small = answer(faces, png(astronaut))
    big = np.asarray(Image.fromarray(astronaut).resize((2560, 2560), Image.Resampling.BICUBIC))
    image = decode(png(big), Limits(), faces.decode_size)
    work = faces.prepare(image, {})
    assert work.shape[0] * work.shape[1] <= faces.work_pixels
    found = answer(faces, png(big))
    assert len(found) == len(small) == 1
    expected = np.array(small[0]["box"]) * 5  # 512 -> 2560
    side = expected[2] - expected[0]
    assert np.abs(np.array(found[0]["box"]) - expected).max() < 0.05 * side
    marks = np.array(found[0]["landmarks"]) - np.array(small[0]["landmarks"]) * 5
    assert np.abs(marks).max() < 0.05 * side
    crop = Image.open(io.BytesIO(base64.b64decode(str(found[0]["crop_png"]))))
    assert crop.size == (112, 112)


def test_the_cascade_gives_its_buffers_back(faces: FacesModel) -> None:
    for net in ("pnet", "rnet", "onet"):
        session = faces.sessions[net]
        options = getattr(session, "shared", session).get_session_options()
        assert not options.enable_cpu_mem_arena and not options.enable_mem_pattern
