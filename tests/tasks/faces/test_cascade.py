"""MTCNN on ONNX Runtime against facenet-pytorch 2.6.0's answers on real photos."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from argus.errors import BadInput, BadPackage, ConfigError
from argus.images.draw import LANDMARK_COLOURS, draw_on
from argus.models.packages import build_manifest
from argus.tasks.faces import MTCNN, Face, load_sessions, nms
from argus.tasks.faces.cascade import pyramid_scales
from argus.tasks.faces.model import face_dict
from tests.tasks.faces.conftest import COLLAGE_CELL

# facenet-pytorch 2.6.0, MTCNN(keep_all=True), default thresholds, on skimage's astronaut.
REFERENCE_BOX = (181.0, 62.0, 268.0, 172.0)
REFERENCE_LANDMARKS = [(205, 102), (247, 104), (225, 129), (202, 139), (245, 142)]
# facenet-pytorch 2.6.0's detect_face (its code, from the wheel) on the same weights, for the
# collage built in conftest.py and for astronaut[60:, 185:]; box, landmarks; largest first.
REFERENCE_COLLAGE = [
    (
        (85.1, 330.4, 194.5, 473.9),
        [(113.2, 381.9), (167.4, 385.8), (138.8, 417.3), (110.4, 430.6), (164.8, 433.3)],
    ),
    (
        (87.1, 62.5, 171.5, 175.3),
        [(108.7, 102.1), (151.3, 104.4), (129.5, 129.7), (106.4, 140.7), (149.4, 142.6)],
    ),
    (
        (633.5, 307.3, 714.5, 413.5),
        [(656.1, 347.3), (695.3, 349.1), (675.8, 372.5), (655.2, 383.9), (694.0, 384.2)],
    ),
    (
        (321.6, 46.2, 388.1, 129.8),
        [(339.8, 76.7), (371.8, 78.7), (355.1, 97.3), (338.5, 104.9), (370.5, 106.6)],
    ),
    (
        (338.8, 292.0, 390.7, 361.4),
        [(353.1, 316.8), (378.5, 318.5), (365.7, 333.5), (351.9, 340.4), (377.6, 341.5)],
    ),
    (
        (602.7, 31.8, 645.8, 88.2),
        [(614.7, 50.9), (636.0, 52.5), (625.1, 64.4), (613.7, 70.6), (634.8, 71.7)],
    ),
]
REFERENCE_CORNER = (
    (-32.6, -9.4, 77.1, 120.3),
    [(-2.3, 37.2), (52.4, 39.4), (23.8, 66.6), (-5.1, 77.3), (51.8, 80.7)],
)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_astronaut_matches_facenet_pytorch(detector: MTCNN, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, REFERENCE_BOX) >= 0.9
    assert face.score > 0.999
    error = np.abs(np.array(face.landmarks) - np.array(REFERENCE_LANDMARKS)).max()
    assert error <= 3.0, face.landmarks


def test_collage_has_one_face_per_cell(detector: MTCNN, collage: np.ndarray) -> None:
    faces = detector.detect(collage)
    assert len(faces) == 6
    cells = set()
    for face, (box, landmarks) in zip(faces, REFERENCE_COLLAGE, strict=True):
        assert iou(face.box, box) >= 0.9
        assert np.abs(np.array(face.landmarks) - np.array(landmarks)).max() <= 3.0
        assert face.score > 0.99
        x1, y1, x2, y2 = face.box
        cells.add((int((y1 + y2) / 2 // COLLAGE_CELL), int((x1 + x2) / 2 // COLLAGE_CELL)))
    assert cells == {(r, c) for r in range(2) for c in range(3)}
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True), "faces come largest first"


@pytest.mark.parametrize("name", ["coffee", "china"])
def test_photos_without_faces(detector: MTCNN, name: str) -> None:
    import skimage.data
    from sklearn.datasets import load_sample_image

    rgb = skimage.data.coffee() if name == "coffee" else load_sample_image("china.jpg")
    assert detector.detect(rgb) == []


def test_images_smaller_than_the_minimum_face(detector: MTCNN, astronaut: np.ndarray) -> None:
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == []
    assert detector.detect(astronaut[:19, :300].copy()) == []
    assert pyramid_scales(19, 300, 20, 0.709) == []
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_face_at_the_image_border(detector: MTCNN, astronaut: np.ndarray) -> None:
    # Half the face is cut off: the candidate crops are clipped to the image, as upstream.
    faces = detector.detect(astronaut[60:, 185:].copy())
    assert len(faces) == 1
    box, landmarks = REFERENCE_CORNER
    assert iou(faces[0].box, box) >= 0.9
    assert np.abs(np.array(faces[0].landmarks) - np.array(landmarks)).max() <= 3.0


def test_rotated_astronaut(detector: MTCNN, astronaut: np.ndarray) -> None:
    rotated = np.asarray(Image.fromarray(astronaut).rotate(20, expand=True))
    faces = detector.detect(rotated)
    assert len(faces) == 1
    # Where the reference landmarks land under Pillow's rotation (counter-clockwise on screen).
    height, width = astronaut.shape[:2]
    cos, sin = math.cos(math.radians(20)), math.sin(math.radians(20))
    centred = np.array(REFERENCE_LANDMARKS, float) - (width / 2, height / 2)
    turned = np.stack(
        [centred[:, 0] * cos + centred[:, 1] * sin, -centred[:, 0] * sin + centred[:, 1] * cos],
        axis=1,
    )
    expected = turned + np.array([rotated.shape[1] / 2, rotated.shape[0] / 2])
    assert np.abs(np.array(faces[0].landmarks) - expected).max() < 4.0


def test_detection_is_repeatable_and_does_not_touch_the_input(
    detector: MTCNN, astronaut: np.ndarray
) -> None:
    before = astronaut.copy()
    first = detector.detect(astronaut)
    assert detector.detect(np.ascontiguousarray(astronaut[:, :, :])) == first
    assert np.array_equal(astronaut, before)
    # A non-contiguous view answers the same as a copy.
    view = np.zeros((512, 1024, 3), np.uint8)
    view[:, ::2] = astronaut
    assert detector.detect(view[:, ::2]) == first


def test_face_fields(detector: MTCNN, astronaut: np.ndarray) -> None:
    face = detector.detect(astronaut)[0]
    assert isinstance(face, Face)
    assert all(type(v) is float for v in face.box) and type(face.score) is float
    assert len(face.landmarks) == 5 and all(len(p) == 2 for p in face.landmarks)
    data = face.to_dict()
    assert data["box"] == list(face.box) and len(data["landmarks"]) == 5
    with pytest.raises(AttributeError):
        face.score = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.uint8), "HxWx3"),
        (np.zeros((64, 64, 4), np.uint8), "HxWx3"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        ([[0, 0, 0]], "numpy"),
    ],
)
def test_bad_images_are_refused(detector: MTCNN, image: Any, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        detector.detect(image)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 1.0},
        {"factor": 0.0},
        {"min_face_size": 0},
        {"min_face_size": float("nan")},
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.6, 0.7, 1.5)},
        {"thresholds": ("high", 0.7, 0.7)},
    ],
)
def test_bad_settings_fail_at_construction(
    mtcnn_sessions: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    s = mtcnn_sessions
    with pytest.raises(ConfigError):
        MTCNN(s["pnet"], s["rnet"], s["onet"], **kwargs)


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (("pnet", "rnet", "pnet"), "landmarks"),
        (("rnet", "rnet", "onet"), "any x any"),
        (("pnet", "onet", "onet"), "24 x 24"),
    ],
)
def test_swapped_networks_are_refused(
    mtcnn_sessions: dict[str, Any], order: tuple[str, str, str], message: str
) -> None:
    with pytest.raises(BadPackage, match=message):
        MTCNN(*(mtcnn_sessions[name] for name in order))


def test_pyramid_scales() -> None:
    scales = pyramid_scales(512, 512, 20, 0.709)
    assert len(scales) == 10
    assert scales[0] == pytest.approx(0.6)
    assert scales[1] == pytest.approx(0.6 * 0.709)
    assert 512 * scales[-1] >= 12 > 512 * scales[-1] * 0.709


def naive_nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, overlap: str, extra: float
) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        ok = True
        for k in keep:
            iw = max(0.0, min(boxes[i, 2], boxes[k, 2]) - max(boxes[i, 0], boxes[k, 0]) + extra)
            ih = max(0.0, min(boxes[i, 3], boxes[k, 3]) - max(boxes[i, 1], boxes[k, 1]) + extra)
            area_i = (boxes[i, 2] - boxes[i, 0] + extra) * (boxes[i, 3] - boxes[i, 1] + extra)
            area_k = (boxes[k, 2] - boxes[k, 0] + extra) * (boxes[k, 3] - boxes[k, 1] + extra)
            denom = min(area_i, area_k) if overlap == "min" else area_i + area_k - iw * ih
            if iw * ih / denom > threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("overlap", ["union", "min"])
@pytest.mark.parametrize("inclusive", [False, True])
def test_nms_matches_the_textbook_loop(overlap: str, inclusive: bool) -> None:
    rng = np.random.default_rng(7)
    # More boxes than one block, clustered so that suppression happens across blocks.
    corners = rng.uniform(0, 400, size=(1300, 2))
    sizes = rng.uniform(5, 80, size=(1300, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    scores = rng.permutation(1300) / 1300.0
    kept = nms(boxes, scores, 0.5, overlap=overlap, inclusive=inclusive)
    expected = naive_nms(boxes, scores, 0.5, overlap, 1.0 if inclusive else 0.0)
    assert kept.tolist() == expected
    assert 50 < len(kept) < 1250


def test_nms_edge_cases() -> None:
    empty = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert empty.shape == (0,)
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.5).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.9).tolist() == [1, 2, 0]
    with pytest.raises(ValueError):
        nms(boxes, np.ones(3), 0.5, overlap="max")


def test_area_resampling_is_torch_area_interpolation(astronaut: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from argus.tasks.faces.cascade import _AreaSampler, _windows

    image = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float()
    sampler = _AreaSampler(astronaut)
    for size in [(308, 308), (155, 101), (13, 700)]:
        expected = (torch.nn.functional.interpolate(image, size=size, mode="area") - 127.5) / 128
        actual = sampler.whole(*size)
        assert np.abs(actual - expected.numpy()).max() < 1e-5
    boxes = np.array(
        [[100.7, 50.2, 180.9, 130.4], [-20, -5, 30, 45], [500, 490, 530, 520]], np.float32
    )
    y0, y1, x0, x1, valid = _windows(boxes, 512, 512)
    assert valid.all()
    crops = sampler.crops(y0, y1, x0, x1, 24)
    for k in range(len(boxes)):
        region = image[:, :, y0[k] : y1[k], x0[k] : x1[k]]
        expected = (
            torch.nn.functional.interpolate(region, size=(24, 24), mode="area") - 127.5
        ) / 128
        assert np.abs(crops[k] - expected[0].numpy()).max() < 1e-5
    outside = np.array([[600, 10, 650, 60]], np.float32)
    assert not _windows(outside, 512, 512)[4].any()


def test_converter_manifest(mtcnn_build: tuple[Path, dict[str, Any]]) -> None:
    workdir, fields = mtcnn_build
    assert fields["name"] == "mtcnn" and fields["task"] == "faces" and fields["license"] == "MIT"
    assert fields["models"] == {"pnet": "pnet.onnx", "rnet": "rnet.onnx", "onet": "onet.onnx"}
    assert fields["options"] == {
        "min_face_size": 20,
        "thresholds": [0.6, 0.7, 0.7],
        "factor": 0.709,
    }
    (wheel,) = fields["source"]["wheels"]
    assert wheel["project"] == "facenet-pytorch" and wheel["version"] == "2.6.0"
    manifest = build_manifest(workdir, fields)
    assert set(manifest["files"]) == {"pnet.onnx", "rnet.onnx", "onet.onnx"}


def test_pnet_takes_any_size(mtcnn_sessions: dict[str, Any]) -> None:
    pnet = mtcnn_sessions["pnet"]
    for shape, out in [((1, 3, 12, 12), (1, 1)), ((2, 3, 40, 61), (15, 26))]:
        reg, prob = pnet.run(["reg", "prob"], {"input": np.zeros(shape, np.float32)})
        assert reg.shape == (shape[0], 4, *out) and prob.shape == (shape[0], 2, *out)
        assert np.allclose(prob.sum(axis=1), 1.0, atol=1e-5)


def test_draw_faces(detector: MTCNN, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut)
    before = astronaut.copy()
    body = {"faces": [face_dict(face) for face in faces]}
    drawn = draw_on(Image.fromarray(astronaut), body)
    assert drawn.size == (512, 512) and drawn.mode == "RGB"
    assert np.array_equal(astronaut, before)
    pixels = np.asarray(drawn)
    x1, y1, _, y2 = (round(v) for v in faces[0].box)
    assert tuple(pixels[(y1 + y2) // 2, x1]) == (0, 255, 0)
    for (x, y), colour in zip(faces[0].landmarks, LANDMARK_COLOURS, strict=True):
        assert tuple(pixels[round(y), round(x)]) == colour
    untouched = pixels[400:, :100]
    assert np.array_equal(untouched, astronaut[400:, :100])
    pil = Image.fromarray(astronaut)
    assert draw_on(pil, body) is not pil
    assert np.array_equal(np.asarray(pil), astronaut)


def test_load_sessions(mtcnn_build: tuple[Path, dict[str, Any]], astronaut: np.ndarray) -> None:
    workdir, fields = mtcnn_build
    paths = {name: workdir / rel for name, rel in fields["models"].items()}
    sessions = load_sessions(paths, threads=2)
    faces = MTCNN(sessions["pnet"], sessions["rnet"], sessions["onet"]).detect(astronaut)
    assert len(faces) == 1 and iou(faces[0].box, REFERENCE_BOX) >= 0.9
    with pytest.raises(ConfigError):
        load_sessions(paths, threads=0)
    with pytest.raises(BadPackage, match="onet"):
        load_sessions({"pnet": paths["pnet"], "rnet": paths["rnet"]})


def test_boxes_outside_the_image_are_dropped(detector: MTCNN, astronaut: np.ndarray) -> None:
    from argus.tasks.faces.cascade import _AreaSampler

    sampler = _AreaSampler(astronaut)
    outside = np.array([[600, 10, 650, 60, 0.9], [-90, -90, -40, -40, 0.8]], np.float32)
    kept, (reg, prob) = detector._crops("rnet", sampler, outside, 24, 512, 512)
    assert len(kept) == 0 and reg.shape == (0, 4) and prob.shape == (0, 2)
    mixed = np.concatenate([outside, [[181, 62, 268, 172, 0.9]]]).astype(np.float32)
    kept, (reg, landmarks, prob) = detector._crops("onet", sampler, mixed, 48, 512, 512)
    assert kept.tolist() == mixed[2:].tolist()
    assert landmarks.shape == (1, 10) and prob[0, 1] > 0.99


def test_conversion_is_reproducible(
    mtcnn_build: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    # Package digests are content addresses: the same wheel must give the same bytes.
    from argus.convert.mtcnn import build
    from tests.tasks.faces.conftest import CACHE_DIR

    workdir, fields = mtcnn_build
    assert build(tmp_path, CACHE_DIR) == fields
    for rel in fields["models"].values():
        assert (tmp_path / rel).read_bytes() == (workdir / rel).read_bytes()


def test_area_sums_stay_exact_past_32_bits() -> None:
    # 4200 x 4200 bright pixels: the 32-bit summed-area table wraps around past 2**32.
    from argus.tasks.faces.cascade import _AreaSampler

    rgb = np.full((4200, 4200, 3), 250, np.uint8)
    rgb[4000:, 4000:] = (10, 128, 255)
    sampler = _AreaSampler(rgb)
    one = np.array([4000])
    crop = sampler.crops(one, one + 200, one, one + 200, 24)
    assert np.allclose(crop[0, :, 0, 0], (np.array([10, 128, 255]) - 127.5) / 128)
    whole = sampler.whole(42, 42)
    assert np.allclose(whole[0, :, -1, -1], (np.array([10, 128, 255]) - 127.5) / 128)
    assert np.allclose(whole[0, :, 0, 0], (250 - 127.5) / 128)
