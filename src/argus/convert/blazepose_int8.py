"""The BlazePose person detector in int8, made at pull time for the ``blazepose`` package, or
refused (the package keeps the float detector and says why).

Why the detector: on a 1024x768 photo it is about 70% of ``people``'s time (the whole image at
224x224 and 4 tiles of 160x224), 87% of that in convolutions; int8 runs it in about 0.6 of
the time on a CPU with VNNI (bench_people). The landmark network stays float.

How: ONNX Runtime's static quantization (QDQ, per-channel int8 weights, uint8 activations,
MinMax ranges) after ``quant_pre_process``, with the convolutions' biases first corrected for
the mean shift their int8 weights cause (:func:`argus.optimize.quantize.correct_biases`; on
this network it cuts the weights' error on the score logits by three quarters). What stays
float: the heads (each output's last depthwise and pointwise convolution), and every reshape,
transpose and concatenation after them, so the outputs are never uint8: the box regressors
span about ±800 input pixels, 6 pixels a step in uint8 (quantized so, the outputs alone put
false people on coffee and flower). The first convolution stays float too, so the image
itself is never uint8: its 256 levels (``p / 127.5 - 1``) fall halfway between uint8 steps
over -1..1, and alone in int8 it moved the score logits about as much as any layer (0.23
mean, against 0.10-0.16 for most), and it is 2% of the arithmetic. Error-compensating
rounding (``argus.optimize.rounding``) gained little more here (the activations' rounding is
most of what is left) for a minute and more of pull time, so weights are rounded to nearest.

Calibration and the check use only photos scikit-image and scikit-learn ship
(``argus-vision[optimize]``; without them the float detector is kept, saying so): the
astronaut pasted at several sizes, mirrored and turned, on grey and on the photos without
people, as the tests build their collages, and those photos themselves. The two sets are made
with different seeds, sizes and backgrounds. On the held-out set the int8 detector must find
the people the float one finds (:data:`MAX_CHANGED`) with the same detector keypoints and face
box (:data:`MAX_SHIFT`), and on the photos without people (turned too) no one the float one
does not find there; otherwise it is refused.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from argus.convert.graph import ConversionError

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

CALIBRATION_IMAGES = 20
HELD_OUT_IMAGES = 24
MAX_CHANGED = 0.25
"""Most of the people either detector finds on the held-out set that the other does not, or
finds moved by more than :data:`MAX_SHIFT` (over the float detector's people). The people task
is fragile where a body meets a tile's edge or the photo's, which picks another view's proposal
or another crop for the landmark network: on the held-out set the float detector itself, on
the images moved by 3 and 2 pixels, changes 21% of its people so (9 of 43). The int8 detector
made here changes 19% (8); with its outputs quantized too, 67%, and it finds 10 people on the
photos without people; with its first convolution int8 too, 14%, but it finds someone on
coffee turned 90 degrees, where the float one's best proposal scores 0.48."""
MAX_SHIFT = 0.25
"""Farthest the two detectors' face box corners and keypoints may lie apart for one person to
be the same, in widths of the float face box: a quarter of the face, 3.5 input pixels at the
smallest face the search looks for (14 input pixels wide)."""
# The heads and what carries their outputs stay float: see the module's docstring.
QUANTIZED_OPS = ["Conv", "Clip", "Add", "Pad", "Resize", "DepthToSpace"]
# scikit-image's astronaut: her face's width and centre in the 512x512 photo (MTCNN's box).
FACE_WIDTH = 87.0
FACE_CENTRE = (224.0, 117.0)
# Canvas sizes (height, width) of the collages.
CANVASES = ((768, 1024), (600, 800), (1024, 768), (720, 1280), (512, 512))


def bundled_photos() -> dict[str, np.ndarray]:
    """scikit-image's and scikit-learn's sample photos (RGB) by name: ConversionError when the
    packages are missing."""
    from argus.errors import BadInput
    from argus.optimize.images import bundled_photos as photos

    try:
        return photos()
    except BadInput as exc:
        raise ConversionError(
            "scikit-image and scikit-learn were not installed at pull (argus-vision[optimize]); "
            "the int8 detector is calibrated and checked on their sample photos"
        ) from exc


def collage(
    person: np.ndarray, background: np.ndarray | None, size: tuple[int, int],
    rng: np.random.Generator, people: int, faces: tuple[int, int],
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """A ``size`` canvas (grey, or ``background`` cropped to fill it) with ``people`` copies of
    ``person`` (the astronaut) pasted without overlap at face widths drawn from ``faces``, some
    mirrored; the image and each face's (x, y, width)."""
    height, width = size
    if background is None:
        canvas = np.full((height, width, 3), 120, dtype=np.uint8)
    else:
        bh, bw = background.shape[:2]
        scale = max(height / bh, width / bw)
        grown_size = (max(width, round(bw * scale)), max(height, round(bh * scale)))
        grown = cv2.resize(background, grown_size, interpolation=cv2.INTER_LINEAR)
        y0 = int(rng.integers(0, grown.shape[0] - height + 1))
        x0 = int(rng.integers(0, grown.shape[1] - width + 1))
        canvas = np.ascontiguousarray(grown[y0 : y0 + height, x0 : x0 + width])
    placed: list[tuple[int, int, int, int]] = []
    found: list[tuple[float, float, float]] = []
    for _ in range(40 * people):
        if len(found) == people:
            break
        face = int(rng.integers(*faces))
        scale = face / FACE_WIDTH
        img = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        mirrored = bool(rng.random() < 0.5)
        if mirrored:
            img = img[:, ::-1]
        h, w = img.shape[:2]
        if h > height or w > width:
            continue
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        box = (x, y, x + w, y + h)
        if any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3]
               for o in placed):
            continue
        canvas[y : y + h, x : x + w] = img
        placed.append(box)
        cx = (w - FACE_CENTRE[0] * scale) if mirrored else FACE_CENTRE[0] * scale
        found.append((x + cx, y + FACE_CENTRE[1] * scale, float(face)))
    return canvas, found


def image_set(photos: dict[str, np.ndarray], backgrounds: list[str], count: int, seed: int,
              faces: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    """``count`` collages of the astronaut (1-3 of her on grey or on one of ``backgrounds``,
    every third turned 90 or 180 degrees), then each background photo as it is and mirrored."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        size = CANVASES[i % len(CANVASES)]
        ground = [None, *backgrounds][i % (len(backgrounds) + 1)]
        image, _ = collage(photos["astronaut"], None if ground is None else photos[ground], size,
                           rng, int(rng.integers(1, 4)), faces)
        if i % 3 == 2:
            image = np.ascontiguousarray(np.rot90(image, 1 + i % 2))
        out.append((f"collage {i} on {ground or 'grey'}", image))
    out += [(name, photos[name]) for name in backgrounds]
    out += [(f"{name} mirrored", np.ascontiguousarray(photos[name][:, ::-1]))
            for name in backgrounds]
    return out


def calibration_set(photos: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    return image_set(photos, ["coffee", "rocket", "china"], CALIBRATION_IMAGES, seed=1,
                     faces=(40, 120))


def held_out_set(photos: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Collages on other backgrounds, and every photo without people turned 90, 180 and 270
    degrees (calibration saw some of them upright, none turned)."""
    out = image_set(photos, ["chelsea", "flower"], HELD_OUT_IMAGES, seed=2, faces=(45, 100))
    return out + [(f"{name} turned {90 * k}", np.ascontiguousarray(np.rot90(photo, k)))
                  for name, photo in photos.items() if name != "astronaut" for k in (1, 2, 3)]


def detector_rows(model: Any, images: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """Every view the people task's search makes of ``images`` (the detector's input rows, as
    ``prepare`` makes them), each padded with zeros, as the search pads past an image, to one
    size (``correct_biases`` runs them in batches)."""
    from argus.optimize.images import raw_image

    rows = [row for _, rgb in images
            for _views, batch in model.prepare(raw_image(rgb), {}).inputs for row in batch]
    height = max(r.shape[0] for r in rows)
    width = max(r.shape[1] for r in rows)
    out = []
    for row in rows:
        padded = np.zeros((height, width, 3), dtype=np.float32)
        padded[: row.shape[0], : row.shape[1]] = row
        out.append(padded)
    return out


def head_convs(graph: Any) -> list[Any]:
    """The convolutions that make the graph's outputs: walking back from each output through
    what is not a convolution (concatenation, reshape, transpose), the first convolution met
    and the one feeding it (a head's pointwise and depthwise convolution)."""
    producer = {out: node for node in graph.node for out in node.output}
    heads: list[Any] = []
    todo = [o.name for o in graph.output]
    seen: set[str] = set()
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type != "Conv":
            todo += list(node.input)
            continue
        heads.append(node)
        before = producer.get(node.input[0])
        if before is not None and before.op_type == "Conv":
            heads.append(before)
    return heads


def input_convs(graph: Any) -> list[Any]:
    """The convolutions that read the graph's input: walking forward from it through what is
    not a convolution (the NHWC to NCHW transpose), the first convolutions met."""
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    weights = {i.name for i in graph.initializer}
    found: list[Any] = []
    todo = [i.name for i in graph.input if i.name not in weights]
    seen: set[str] = set()
    while todo:
        for node in readers.get(todo.pop(), []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type == "Conv":
                found.append(node)
            else:
                todo += list(node.output)
    return found


def quantize_detector(src: Path, dest: Path, rows: list[np.ndarray], work: Path
                      ) -> dict[str, Any]:
    """Write the int8 detector of ``src`` to ``dest``, calibrated on ``rows``; what was done."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from argus.optimize.quantize import calibration_rows, correct_biases, input_name

    name = input_name(src)
    prepared, corrected = work / "prepared.onnx", work / "corrected.onnx"

    with warnings.catch_warnings():
        # The quantizer's advice (pre-processing, QDQ on CPU, per-channel) is about choices
        # made here.
        warnings.simplefilter("ignore")
        # Symbolic shape inference cannot follow the free height and width through the
        # grid reshapes; ONNX's own shape inference and the graph optimisation still run.
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        weights = {i.name: i for i in graph.initializer}
        kept_float = input_convs(graph) + head_convs(graph)
        # Their weights stay as they are: no bias correction for them.
        unchanged = {n.input[1]: numpy_helper.to_array(weights[n.input[1]]) for n in kept_float}
        corrections = correct_biases(prepared, corrected, name, rows, unchanged)
        quantize_static(
            str(corrected), str(dest), calibration_rows(name, rows),
            quant_format=QuantFormat.QDQ, per_channel=True,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=QUANTIZED_OPS,
            nodes_to_exclude=[n.name for n in kept_float],
        )
    import onnxruntime

    return {
        "to": "int8", "format": "QDQ", "onnxruntime": onnxruntime.__version__,
        "weights": "int8, per channel, rounded to nearest",
        "activations": "uint8, MinMax ranges",
        "bias_correction": corrections,
        "kept_float": sorted(n.name for n in kept_float),
        "kept_float_why": "the first convolution (the image is never uint8) and the output "
                          "heads with the reshapes carrying them (uint8 boxes would be 6 input "
                          "pixels a step)",
    }


def answers(model: Any, images: list[tuple[str, np.ndarray]]) -> list[list[dict[str, Any]]]:
    """The people task's answer for each image."""
    from argus.optimize.images import raw_image

    out = []
    for _, rgb in images:
        image = raw_image(rgb)
        (raw,) = model.infer([model.prepare(image, {})])
        out.append(model.finish(raw, image, {})["people"])
    return out


def person_points(person: dict[str, Any]) -> np.ndarray:
    """The detector's face box corners and four keypoints of one answered person, ``[6, 2]``."""
    corners = np.asarray(person["face_box"], dtype=np.float64).reshape(2, 2)
    keypoints = np.asarray(list(person["keypoints"].values()), dtype=np.float64)
    return np.concatenate([corners, keypoints])


def compare(expected: list[list[dict[str, Any]]], got: list[list[dict[str, Any]]],
            names: list[str]) -> dict[str, Any]:
    """How alike two detectors' answers are: per float person, the int8 person whose face box
    centre is nearest (within half a face width) and how far apart their face boxes and
    keypoints are (in float face widths); a person changed is one missing, one extra, or one
    moved by more than :data:`MAX_SHIFT`."""
    people = changed = 0
    shifts: list[float] = []
    where: list[str] = []
    for name, ours, theirs in zip(names, expected, got, strict=True):
        people += len(ours)
        left = [person_points(p) for p in theirs]
        for person in ours:
            points = person_points(person)
            width = max(float(points[1, 0] - points[0, 0]), 1.0)
            centre = points[:2].mean(axis=0)
            gaps = [float(np.hypot(*(centre - p[:2].mean(axis=0)))) for p in left]
            if not gaps or min(gaps) > 0.5 * width:
                changed += 1
                where.append(f"{name}: a person not found")
                continue
            other = left.pop(int(np.argmin(gaps)))
            shift = float(np.hypot(*(points - other).T).max()) / width
            shifts.append(shift)
            if shift > MAX_SHIFT:
                changed += 1
                where.append(f"{name}: a person moved by {shift:.2f} face widths")
        changed += len(left)
        where += [f"{name}: a person the float detector did not find"] * len(left)
    return {
        "images": len(names),
        "people": people,
        "changed": changed,
        "changed_share": round(changed / max(1, people), 4),
        "median_shift": round(float(np.median(shifts)), 4) if shifts else 0.0,
        "largest_shift": round(max(shifts), 4) if shifts else 0.0,
        "changes": where,
    }


def verdict(check: dict[str, Any]) -> str | None:
    """Why the int8 detector whose :func:`compare` (and count of people on the photos without
    people) is ``check`` is refused; None when it holds."""
    if check["more_people_on_photos_without_people"]:
        return (f"it finds {check['more_people_on_photos_without_people']} more people than "
                "the float detector on photos without people")
    if check["changed_share"] > MAX_CHANGED:
        return (f"it changes {check['changed']} of the float detector's {check['people']} "
                f"held-out people, over the {MAX_CHANGED:.0%} allowed")
    return None


def people_model(directory: Path, fields: dict[str, Any], store: Path) -> Any:
    """The people task on the package made of ``directory``'s files and ``fields``."""
    import os

    from argus.models.packages import PackageStore
    from argus.tasks.people import PeopleModel

    return PeopleModel(PackageStore(store).add(directory, fields), os.cpu_count() or 1)


def make_int8(workdir: Path, fields: dict[str, Any], progress: Progress = lambda _m: None
              ) -> dict[str, Any]:
    """Replace ``workdir``'s float ``detector.onnx`` (beside the package's other networks) by
    its int8 version when that passes the check; what the manifest's source records either
    way."""
    try:
        photos = bundled_photos()
    except ConversionError as exc:
        log.warning("blazepose keeps the float detector: %s", exc)
        return {"detector": "float", "why": str(exc)}
    with tempfile.TemporaryDirectory(prefix="argus-blazepose-int8-") as tmp:
        work = Path(tmp)
        float_model = people_model(workdir, fields, work / "store")
        calibration = calibration_set(photos)
        rows = detector_rows(float_model, calibration)
        progress(f"quantizing the detector ({len(calibration)} calibration images, "
                 f"{len(rows)} views)")
        candidate = work / "int8"
        candidate.mkdir()
        done = quantize_detector(workdir / "detector.onnx", candidate / "detector.onnx", rows,
                                 work)
        for other in fields["models"].values():  # every network but the detector, as it is
            if other != "detector.onnx":
                shutil.copy2(workdir / other, candidate / other)
        int8_model = people_model(candidate, fields, work / "store")
        held = held_out_set(photos)
        progress(f"checking it against the float detector on {len(held)} held-out images")
        names = [name for name, _ in held]
        expected, got = answers(float_model, held), answers(int8_model, held)
        check = compare(expected, got, names)
        # No more people than the float detector finds on the photos without people (the
        # collages are named "collage ..."; turned 270 degrees, china and flower show the
        # float one a person).
        false_people = sum(max(0, len(g) - len(e))
                           for name, e, g in zip(names, expected, got, strict=True)
                           if not name.startswith("collage"))
        check["more_people_on_photos_without_people"] = false_people
        done["calibration"] = (f"{len(calibration)} images ({len(rows)} detector views): the "
                               "astronaut pasted on grey, coffee, rocket and china, and those "
                               "photos")
        done["held_out"] = (f"{len(held)} images: other collages of the astronaut, on grey, "
                            "chelsea and flower, those photos, and the five photos without "
                            "people turned 90, 180 and 270 degrees")
        done["check"] = check
        why = verdict(check)
        if why is not None:
            log.warning("blazepose keeps the float detector: the int8 one drifts: %s", why)
            return {"detector": "float", "why": f"the int8 detector was refused: {why}",
                    "refused": done}
        shutil.copy2(candidate / "detector.onnx", workdir / "detector.onnx")
    return {"detector": "int8", **done}
