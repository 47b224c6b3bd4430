"""``ppocr-int8``: the ``ppocr`` package with its recogniser's convolution backbone in int8
(ONNX Runtime static quantization), for a faster ``text`` where a little accuracy risk is
acceptable. Opt-in: pulled only when named (``argus models pull ppocr-int8``); the ``text``
question keeps the float ``ppocr``.

Why the recogniser, and only its backbone: reading lines is most of the time on a page of text
(on a 30-line page about 80%), three quarters of it in the backbone's convolutions, which int8
runs about 2.5x faster on a CPU with VNNI. The sequence part after it (the SVTR neck on one row
of positions, then the 18,710-way CTC head) stays float: it is a fraction of the arithmetic,
and as uint8 the head's probabilities (the lines' scores) would be 256 steps. The detector
stays float too: in int8 as well, a dense page of 16 px text read worse than with rapidocr.

Calibration needs the recogniser's real inputs, lines cut 48 pixels high, and no photos of
unclear licence: lines of random characters are rendered here with Pillow's own font at several
sizes, dark on light and light on dark, with noise and JPEG compression, and read as 320-pixel
tiles; activation ranges are the 99.999th percentile (MinMax let one space between words go
on a 36 px line). Before packaging, the int8 recogniser reads a second, held-out set of rendered
lines, and the build is refused when its readings differ from the float one's in more than
:data:`MAX_DIFFERENT` of their characters.
"""

from __future__ import annotations

import io
import logging
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from argus.convert import ppocr
from argus.convert.graph import ConversionError

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
NAME = "ppocr-int8"
# The float package's wheel pin, so a pull's cache key changes with it.
WHEEL = ppocr.WHEEL
# Calibration and check lines, and the width of the tiles calibration reads (the histogram
# calibrator wants one input shape).
CALIBRATION_LINES = 48
CHECK_LINES = 64
TILE = 320
MAX_DIFFERENT = 0.02
"""Most characters of the float recogniser's readings of the held-out lines the int8 one may
read otherwise (edits over characters). Lines of random characters, some 12 px high, are
harder than text: the float recogniser itself misreads some, and int8 moves the near calls."""
# Characters of the rendered lines: Latin letters, digits and common punctuation.
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    ".,:;-/@()'!?%&+#*"
)


def rendered_line(rng: random.Random) -> np.ndarray:
    """One line of random words, drawn with Pillow's own font and cut 48 pixels high as the
    ``text`` task cuts lines (RGB uint8)."""
    from PIL import Image, ImageDraw, ImageFont

    from argus.tasks.textrec import LINE_HEIGHT

    words = [
        "".join(rng.choice(ALPHABET if rng.random() < 0.3 else ALPHABET[:26])
                for _ in range(rng.randint(1, 9)))
        for _ in range(rng.randint(1, 5))
    ]
    text = " ".join(words)
    size = rng.randint(12, 44)
    font = ImageFont.load_default(size)
    dark = rng.randint(0, 90)
    light = rng.randint(170, 255)
    ink, paper = (dark, light) if rng.random() < 0.75 else (light, dark)
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    left, top, right, bottom = (int(v) for v in box)
    pad = max(2, size // 4)
    image = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), (paper,) * 3)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=(ink,) * 3)
    arr = np.asarray(image).astype(np.float32)
    arr += np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 8), arr.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
        buf, format="JPEG", quality=rng.randint(50, 95))
    rgb = np.asarray(Image.open(buf).convert("RGB"))
    h, w = rgb.shape[:2]
    width = max(1, round(w * LINE_HEIGHT / h))
    shrink = h > LINE_HEIGHT
    return cv2.resize(rgb, (width, LINE_HEIGHT),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def rendered_lines(count: int, seed: int) -> list[np.ndarray]:
    rng = random.Random(seed)
    return [rendered_line(rng) for _ in range(count)]


def tiles(lines: list[np.ndarray]) -> list[np.ndarray]:
    """Each line as ``[1, 3, 48, TILE]`` pieces, the last padded as the task pads."""
    from argus.tasks.textrec import pad_batch

    return [pad_batch([line[:, x : x + TILE]], TILE)
            for line in lines for x in range(0, line.shape[1], TILE)]


def quantize_recogniser(src: Path, dest: Path, calibration: list[np.ndarray]) -> list[str]:
    """Write ``src``'s int8 version to ``dest``; the names of the nodes kept float."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(src))
    # Per-channel weights need DequantizeLinear's axis (opset 13); the wheel's file is opset 11.
    model = version_converter.convert_version(model, 13)
    names = [node.name for node in model.graph.node]
    first_matmul = next(
        (i for i, node in enumerate(model.graph.node) if node.op_type == "MatMul"), None)
    if first_matmul is None:
        raise ConversionError("the recogniser has no MatMul: not the network expected")
    kept_float = names[first_matmul:]
    upgraded = dest.with_name("recogniser-opset13.onnx")
    onnx.save(model, str(upgraded))

    class Tiles(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self.rows, None)
            return None if row is None else {"x": row}

    with warnings.catch_warnings():
        # The quantizer's advice (pre-processing, QDQ on CPU) is about choices made here.
        warnings.simplefilter("ignore")
        quantize_static(
            str(upgraded), str(dest), Tiles(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=kept_float,
            # Ranges folded every few tiles, so memory stays bounded.
            extra_options={"CalibMaxIntermediateOutputs": 8},
        )
    upgraded.unlink()
    return kept_float


def edits(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def compare_readings(float_path: Path, int8_path: Path, characters: list[str],
                     lines: list[np.ndarray]) -> dict[str, float]:
    """How alike the two recognisers read ``lines``: the share of lines read to the same text,
    and the edits between their readings over the float readings' characters."""
    import onnxruntime as ort

    from argus.tasks.textrec import BEST_CLASS, BEST_PROBABILITY, Columns, recognise

    def reader(path: Path) -> Callable[[np.ndarray], Columns]:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> Columns:
            best, probability = session.run([BEST_CLASS, BEST_PROBABILITY], {name: x})
            return best, probability

        return run

    a = [r.text for r in recognise(reader(float_path), lines, characters, 16)]
    b = [r.text for r in recognise(reader(int8_path), lines, characters, 16)]
    pairs = list(zip(a, b, strict=True))
    return {
        "same_lines": round(sum(x == y for x, y in pairs) / max(1, len(pairs)), 4),
        "different_characters": round(
            sum(edits(x, y) for x, y in pairs) / max(1, sum(len(x) for x in a)), 4),
    }


def build(workdir: Path, cache_dir: Path, progress: Progress = lambda _msg: None) -> dict[str, Any]:
    """Write the float package's files with the recogniser in int8; the manifest fields."""
    import json

    import onnxruntime

    fields = ppocr.build(workdir, cache_dir, progress)
    characters = json.loads((workdir / "characters.json").read_text("utf-8"))
    float_path = workdir / "recogniser-float.onnx"
    (workdir / "recogniser.onnx").rename(float_path)
    progress(f"rendering {CALIBRATION_LINES} calibration lines")
    calibration = tiles(rendered_lines(CALIBRATION_LINES, seed=1))
    progress(f"quantizing the recogniser ({len(calibration)} calibration tiles)")
    kept_float = quantize_recogniser(float_path, workdir / "recogniser.onnx", calibration)
    progress(f"checking it on {CHECK_LINES} held-out lines")
    alike = compare_readings(float_path, workdir / "recogniser.onnx", characters,
                             rendered_lines(CHECK_LINES, seed=2))
    float_path.unlink()
    if alike["different_characters"] > MAX_DIFFERENT:
        raise ConversionError(
            f"the int8 recogniser reads {alike['different_characters']:.1%} of the held-out "
            f"lines' characters otherwise than the float one, over the {MAX_DIFFERENT:.0%} "
            "allowed"
        )
    fields["name"] = NAME
    fields["description"] = (
        f"{fields['description']}; the recogniser's convolution backbone in int8 "
        "(faster, opt-in: the text question uses the float ppocr)"
    )
    fields["source"]["note"] = (
        "the detector and orientation classifier exactly as the wheel ships them; the "
        "recogniser quantized at pull time by ONNX Runtime "
        f"{onnxruntime.__version__}"
    )
    fields["source"]["converter"] = "argus.convert.ppocr_int8"
    fields["source"]["quantization"] = {
        "to": "int8", "format": "QDQ", "weights": "int8, per channel",
        "activations": "uint8, 99.999th percentile ranges",
        "calibration": f"{CALIBRATION_LINES} rendered lines of random characters "
                       f"(Pillow's font) as {len(calibration)} tiles of {TILE} px",
        "kept_float": f"the {len(kept_float)} nodes from the first MatMul on "
                      "(SVTR neck and CTC head)",
        "held_out_lines": CHECK_LINES,
        "held_out_same_lines": alike["same_lines"],
        "held_out_different_characters": alike["different_characters"],
    }
    return fields
