"""The people task on real photos: the BlazePose detector and landmark network converted by the
project, pulled as one package; single photos, rotated and mirrored, collages of several people
at different sizes, and photos with no one in them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from argus.tasks.people import LANDMARK_NAMES, PeopleModel
from tests.tasks.people.conftest import ask, collage, sources

skimage_data = pytest.importorskip("skimage.data")


def landmark(person: dict[str, Any], name: str) -> dict[str, float]:
    return next(p for p in person["pose"] if p["name"] == name)


def test_the_package_holds_its_three_networks_and_their_checks(
    people_model: PeopleModel,
) -> None:
    manifest = people_model.package.manifest
    assert manifest.license == "Apache-2.0"
    assert set(manifest.onnx_files()) == {"detector", "landmarks", "face"}
    source = manifest.source.record()
    members = [w["member"] for w in source["wheels"]]
    assert members == [
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    ]
    assert all(w["project"] == "mediapipe" and len(w["member_sha256"]) == 64
               for w in source["wheels"])  # fmt: skip
    # The dev venv has OpenVINO: the pull compared each network with its reading of the .tflite.
    for check in source["conversion_check"].values():
        assert check["checked"] is True and check["max_rel_diff"] <= check["tolerance"]
    # The landmark graph is cut to the two outputs the task reads.
    assert [o.name for o in people_model.landmarker.get_outputs()] == ["Identity", "Identity_1"]


def test_the_pulled_detector_is_int8_and_was_checked(people_model: PeopleModel) -> None:
    """The dev venv has scikit-image and scikit-learn: the pull calibrated the detector on their
    photos and kept the int8 one, since it found the float one's held-out people."""
    import collections

    import onnx

    from argus.convert.blazepose_int8 import MAX_CHANGED

    made = people_model.package.manifest.source.record()["detector_quantization"]
    assert made["detector"] == "int8", made.get("why")
    assert made["check"]["changed_share"] <= MAX_CHANGED
    assert made["check"]["more_people_on_photos_without_people"] == 0
    graph = onnx.load(str(people_model.package.onnx_files()["detector"])).graph
    producer = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    int8 = {n.name for n in convs if n.input[1] in producer
            and producer[n.input[1]].op_type == "DequantizeLinear"}
    # Every convolution is int8 but the first and the heads', as the record says.
    assert {n.name for n in convs} - int8 == set(made["kept_float"])
    assert len(int8) == len(convs) - 13
    # The image reaches the first convolution as float: the transpose to NCHW, then it.
    (first,) = [n for n in graph.node if graph.input[0].name in n.input]
    assert first.op_type == "Transpose"
    assert [n.op_type for n in graph.node if first.output[0] in n.input] == ["Conv"]
    # The outputs are float: no DequantizeLinear just before them.
    for output in graph.output:
        assert producer[output.name].op_type == "Concat"
        assert all(producer[i].op_type != "DequantizeLinear"
                   for i in producer[output.name].input)
    # The landmark network stays float.
    landmarks = onnx.load(str(people_model.package.onnx_files()["landmarks"])).graph
    ops = collections.Counter(n.op_type for n in landmarks.node)
    assert ops["QuantizeLinear"] == 0


@pytest.mark.parametrize("turn", ["upright", "mirrored", "90", "180", "270"])
def test_astronaut_is_one_person_with_her_skeleton(people_model: PeopleModel, turn: str) -> None:
    rgb = skimage_data.astronaut()
    # Where her nose is (x, y) in the 512x512 photo, turned the same way as the photo.
    nose = np.array([218.0, 124.0])
    if turn == "mirrored":
        rgb, nose = rgb[:, ::-1], np.array([512 - nose[0], nose[1]])
    elif turn != "upright":
        k = int(turn) // 90
        rgb = np.rot90(rgb, k)  # counter-clockwise: (x, y) -> (y, 512 - x), k times
        for _ in range(k):
            nose = np.array([nose[1], 512 - nose[0]])
    (person,) = ask(people_model, rgb)
    assert person["label"] == "person" and person["score"] > 0.8
    assert person["detector_score"] >= 0.5
    names = [p["name"] for p in person["pose"]]
    assert names == list(LANDMARK_NAMES) and len(names) == 33
    found = landmark(person, "nose")
    assert np.hypot(found["x"] - nose[0], found["y"] - nose[1]) < 15, (found, nose)
    assert found["visibility"] > 0.9 and found["presence"] > 0.9
    # Her shoulders are seen, a face width or more apart, below her nose along the body.
    left, right = landmark(person, "left_shoulder"), landmark(person, "right_shoulder")
    assert left["visibility"] > 0.9 and right["visibility"] > 0.9
    assert np.hypot(left["x"] - right["x"], left["y"] - right["y"]) > 90
    shoulders = np.array([(left["x"] + right["x"]) / 2, (left["y"] + right["y"]) / 2])
    down = {"upright": (0, 1), "mirrored": (0, 1), "90": (1, 0), "180": (0, -1),
            "270": (-1, 0)}[turn]  # fmt: skip
    assert float(np.dot(shoulders - nose, down)) > 60
    # Facing the camera, her left shoulder is on the image's right; mirrored, she still faces
    # the camera, so it still is.
    across = {"upright": (1, 0), "mirrored": (1, 0), "90": (0, -1), "180": (-1, 0),
              "270": (0, 1)}[turn]  # fmt: skip
    assert float(np.dot([left["x"] - right["x"], left["y"] - right["y"]], across)) > 0
    # The box holds the visible landmarks and stays inside the photo.
    x1, y1, x2, y2 = person["box"]
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
    for p in person["pose"]:
        if p["visibility"] > 0.5 and 0 <= p["x"] <= 512 and 0 <= p["y"] <= 512:
            assert x1 <= p["x"] <= x2 and y1 <= p["y"] <= y2, p


def matched(people: list[dict[str, Any]], faces: list[tuple[float, float, float]]) -> list[int]:
    """For each face (x, y, width), how many people have their nose landmark on it."""
    counts = []
    for x, y, width in faces:
        counts.append(sum(
            np.hypot(landmark(p, "nose")["x"] - x, landmark(p, "nose")["y"] - y) < 0.6 * width
            for p in people
        ))  # fmt: skip
    return counts


COLLAGES = {
    # 1024x768, four people with faces 45 to 61 px wide.
    "four-small": ((768, 1024), [("astronaut", 52, 0, 300), ("obama", 49, 320, 20),
                                 ("biden", 61, 520, 200), ("obama3", 50, 760, 100)]),
    # 1280x800, one large (87 px) and two smaller (58, 74 px).
    "sizes": ((800, 1280), [("astronaut", 87, 0, 200), ("obama", 74, 530, 0),
                            ("biden", 58, 560, 330)]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(COLLAGES))
@pytest.mark.parametrize("turn", ["upright", "mirrored", "180"])
def test_every_person_in_a_collage_is_found_once(
    people_model: PeopleModel, people_photos: dict[str, bytes], name: str, turn: str
) -> None:
    size, items = COLLAGES[name]
    rgb, faces = collage(sources(people_photos), size, items)
    height, width = size
    if turn == "mirrored":
        rgb, faces = rgb[:, ::-1], [(width - x, y, w) for x, y, w in faces]
    elif turn == "180":
        rgb, faces = rgb[::-1, ::-1], [(width - x, height - y, w) for x, y, w in faces]
    people = ask(people_model, rgb)
    assert matched(people, faces) == [1] * len(faces), [p["face_box"] for p in people]
    assert len(people) == len(faces)


def test_a_photo_over_work_pixels_is_answered_in_its_own_pixels(
    people_model: PeopleModel,
) -> None:
    """Twice the astronaut's size (1 MP): looked at reduced, answered at full size."""
    import cv2

    big = cv2.resize(skimage_data.astronaut(), (1400, 1400), interpolation=cv2.INTER_LINEAR)
    assert people_model.options.work_pixels < 1400 * 1400
    (person,) = ask(people_model, big)
    nose = landmark(person, "nose")
    assert abs(nose["x"] - 218 * 1400 / 512) < 40 and abs(nose["y"] - 124 * 1400 / 512) < 40


def no_people_photos() -> dict[str, np.ndarray]:
    photos = {n: getattr(skimage_data, n)() for n in ("coffee", "chelsea", "rocket")}
    datasets = pytest.importorskip("sklearn.datasets")
    photos["china"] = datasets.load_sample_image("china.jpg")
    photos["flower"] = datasets.load_sample_image("flower.jpg")
    return photos


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "china", "flower"])
@pytest.mark.parametrize("turn", ["upright", "mirrored", "90", "180", "270"])
def test_photos_without_people_answer_none(
    people_model: PeopleModel, name: str, turn: str
) -> None:
    """Turned half a circle, coffee was a person (presence 0.85); turned three quarters, so
    were china (1.0) and flower (0.97): no face where their skeletons put one."""
    rgb = no_people_photos()[name]
    if turn == "mirrored":
        rgb = rgb[:, ::-1]
    elif turn != "upright":
        rgb = np.rot90(rgb, int(turn) // 90)
    assert ask(people_model, rgb) == []


def skeleton(dx: float, hips_dy: float = 0.0, hips_seen: float = 1.0) -> np.ndarray:
    """A standing body: nose at (100 + dx, 100), shoulders 40 px lower, hips 200 px lower."""
    points = np.zeros((33, 5))
    points[:, 3:] = 1.0
    points[0, :2] = (100 + dx, 100)
    points[11, :2], points[12, :2] = (130 + dx, 140), (70 + dx, 140)
    points[23, :2], points[24, :2] = (120 + dx, 340 + hips_dy), (80 + dx, 340 + hips_dy)
    points[[23, 24], 3] = hips_seen
    return points


def test_one_body_proposed_twice_is_answered_once() -> None:
    from argus.tasks.people.model import dedupe, same_pose

    assert same_pose(skeleton(0), skeleton(8))
    # Hips guessed outside the photo differ a lot; the landmarks both see still agree.
    assert same_pose(skeleton(0, 0.0, 0.1), skeleton(5, 120.0, 0.1))
    assert not same_pose(skeleton(0), skeleton(90))  # someone beside
    people = [({"score": 0.8}, skeleton(4)), ({"score": 0.9}, skeleton(0)),
              ({"score": 0.7}, skeleton(200))]  # fmt: skip
    assert [p["score"] for p in dedupe(people)] == [0.9, 0.7]


@pytest.mark.parametrize("name", ["biden", "obama3"])
def test_a_large_portrait_is_one_person(
    people_model: PeopleModel, people_photos: dict[str, bytes], name: str
) -> None:
    """Portraits of 2-3 MP, looked at whole and in tiles: tiles see parts of a body (biden's
    crossed arms, obama3's jacket) that the detector may propose as more people; one person
    is answered."""
    import io

    from PIL import Image

    from tests.tasks.people.conftest import decoded

    image = decoded(np.asarray(Image.open(io.BytesIO(people_photos[name])).convert("RGB")))
    prepared = people_model.prepare(image, {})
    raw = people_model.look(prepared)
    assert len(prepared.views) > 1 and raw.candidates
    (person,) = people_model.finish(raw, image, {})["people"]
    assert landmark(person, "nose")["visibility"] > 0.9


def test_a_request_conf_is_the_detectors_threshold(people_model: PeopleModel) -> None:
    from argus.errors import BadInput
    from tests.tasks.people.conftest import decoded

    image = decoded(skimage_data.astronaut())  # her detector score is about 0.8
    for conf, found in ((None, 1), ("0.3", 1), (0.99, 0)):
        params = {} if conf is None else {"conf": conf}
        raw = people_model.infer([people_model.prepare(image, params)])[0]
        assert len(people_model.finish(raw, image, params)["people"]) == found, conf
    for bad in ("much", 1.5):
        with pytest.raises(BadInput, match="conf must be"):
            people_model.prepare(image, {"conf": bad})
