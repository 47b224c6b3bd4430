"""The people task on real photos, with the BlazePose detector converted by the project."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from argus.convert import blazepose
from argus.db.engine import make_engine
from argus.images import DecodedImage, Limits, decode
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from argus.tasks import load_task_model
from argus.tasks.people import PeopleModel, anchors, plausible, weighted_nms

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def model(pulled_home: Path) -> PeopleModel:
    settings = Settings(home=pulled_home)
    engine = make_engine(settings.db_url)
    store = PackageStore(settings.packages_dir)
    digest = ModelRegistry(engine, store).resolve(blazepose.NAME).digest
    engine.dispose()
    loaded = load_task_model(store.load(digest), threads=1)
    assert isinstance(loaded, PeopleModel)
    return loaded


def decoded(rgb: np.ndarray) -> DecodedImage:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return decode(buf.getvalue(), Limits())


def people(model: PeopleModel, rgb: np.ndarray) -> list[dict[str, Any]]:
    image = decoded(rgb)
    (raw,) = model.infer([model.prepare(image, {})])
    answer: list[dict[str, Any]] = model.finish(raw, image, {})["people"]
    return answer


def test_anchor_layout_matches_the_outputs(model: PeopleModel) -> None:
    assert anchors().shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 2) == (2254, 2)
    assert model.package.manifest.outputs[0].shape == (-1, 2254, 12)
    manifest = model.package.manifest
    assert manifest.license == "Apache-2.0"
    (wheel,) = manifest.source.record()["wheels"]
    assert wheel["project"] == "mediapipe" and wheel["member"].endswith("pose_detection.tflite")
    # The dev venv has OpenVINO: the pull compared the conversion with its reading of the .tflite.
    check = manifest.source.record()["conversion_check"]
    assert check["checked"] is True and check["max_rel_diff"] <= check["tolerance"]


def test_an_implausibly_long_torso_is_not_a_person() -> None:
    face = np.array([100.0, 100.0, 200.0, 200.0])
    points = np.array([[150.0, 450.0], [150.0, 0.0], [150.0, 220.0], [150.0, 50.0]])
    assert plausible(face, points, 5.0)
    points[0] = [150.0, 900.0]  # the hip 6.8 face widths below the shoulder
    assert not plausible(face, points, 5.0)


def test_weighted_nms_merges_overlapping_candidates() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float64)
    keypoints = np.zeros((3, 4, 2))
    keypoints[1] += 4.0
    kept = weighted_nms(boxes, keypoints, np.array([0.9, 0.3, 0.6]), 0.3)
    assert len(kept) == 2
    box, points, score = kept[0]
    assert score == 0.9
    assert box[0] == pytest.approx(0.25) and points[0, 0] == pytest.approx(1.0)
    assert kept[1][2] == 0.6


@pytest.mark.parametrize("mirrored", [False, True])
def test_astronaut_is_one_person(model: PeopleModel, mirrored: bool) -> None:
    rgb = skimage_data.astronaut()
    if mirrored:
        rgb = np.ascontiguousarray(rgb[:, ::-1])
    (person,) = people(model, rgb)
    assert person["label"] == "person" and person["score"] > 0.6
    x1, y1, x2, y2 = person["box"]
    # Her face is near x 160-265 (x 250-355 mirrored), y 130-240 of the 512x512 photo; the body
    # box reaches from above her head to the bottom of the photo.
    fx1, fy1, fx2, fy2 = person["face_box"]
    face_x = 212 if not mirrored else 512 - 212
    assert abs((fx1 + fx2) / 2 - face_x) < 40 and abs((fy1 + fy2) / 2 - 185) < 40
    assert x1 < fx1 and x2 > fx2 and y1 < fy1 and y2 >= 500
    hip = person["keypoints"]["mid_hip"]
    shoulder = person["keypoints"]["mid_shoulder"]
    assert shoulder[1] < hip[1]  # upright
    assert fy2 < shoulder[1] + 40


def no_people_photos() -> dict[str, np.ndarray]:
    photos = {n: getattr(skimage_data, n)() for n in ("coffee", "chelsea", "rocket")}
    datasets = pytest.importorskip("sklearn.datasets")
    photos["china"] = datasets.load_sample_image("china.jpg")
    photos["flower"] = datasets.load_sample_image("flower.jpg")
    return photos


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "china", "flower"])
def test_photos_without_people_answer_none(model: PeopleModel, name: str) -> None:
    assert people(model, no_people_photos()[name]) == []
