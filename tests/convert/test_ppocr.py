"""The pinned rapidocr wheel's three ONNX members, copied as the ppocr package."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from argus.convert import ppocr
from argus.convert.graph import ConversionError
from argus.convert.wheels import fetch_wheel
from argus.tasks.textrec import (
    BEST_CLASS,
    BEST_PROBABILITY,
    LINE_HEIGHT,
    Columns,
    best_of,
    recognise,
)
from tests.convert.conftest import CACHE_DIR
from tests.rendered_text import cer, fonts, render, samples


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    work = tmp_path_factory.mktemp("ppocr")
    return work, ppocr.build(work, CACHE_DIR)


def test_the_files_are_the_wheels_members_and_the_recogniser_answers_best_classes(
    built: tuple[Path, dict[str, object]],
) -> None:
    work, fields = built
    assert fields["models"] == {
        "detector": "detector.onnx", "recogniser": "recogniser.onnx",
        "orientation": "orientation.onnx",
    }
    for member in (ppocr.DETECTOR, ppocr.ORIENTATION):
        data = (work / f"{member.role}.onnx").read_bytes()
        assert hashlib.sha256(data).hexdigest() == member.sha256
    session = ort.InferenceSession(str(work / "recogniser.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [BEST_CLASS, BEST_PROBABILITY]
    source = fields["source"]
    assert isinstance(source, dict)
    assert [w["member"] for w in source["wheels"]] == [m.path for m in ppocr.MEMBERS]
    check = source["conversion_check"]["runs"]["recogniser"]
    assert check["output"] == [2, 20, 18710]
    assert check["best_of_columns"]["outputs"] == {BEST_CLASS: [2, 20], BEST_PROBABILITY: [2, 20]}
    assert fields["license"] == "Apache-2.0" and fields["task"] == "text"


def rendered_lines() -> tuple[list[np.ndarray], list[str]]:
    """Each line of eight rendered samples drawn alone and scaled to the recogniser's 48 px."""
    lines, texts = [], []
    for i, sample in enumerate(samples(8, seed=11)):
        for text in sample.lines:
            rgb, _ = render((text,), fonts()[i % len(fonts())], 16 + 4 * i, noise=4.0,
                            quality=80, seed=i)
            # Cut to the ink and a quarter of its height around it, as a detected line is.
            rows = np.flatnonzero(rgb.min(axis=(1, 2)) < 128)
            cols = np.flatnonzero(rgb.min(axis=(0, 2)) < 128)
            pad = (rows[-1] - rows[0]) // 4 + 1
            top, left = max(0, rows[0] - pad), max(0, cols[0] - pad)
            rgb = rgb[top : rows[-1] + pad, left : cols[-1] + pad]
            width = round(rgb.shape[1] * LINE_HEIGHT / rgb.shape[0])
            lines.append(cv2.resize(rgb, (width, LINE_HEIGHT), interpolation=cv2.INTER_AREA))
            texts.append(text)
    return lines, texts


def test_the_best_classes_read_what_the_full_output_reads() -> None:
    """The packaged recogniser and the wheel's own, on the same rendered lines in the same
    batches: the same text and the same score for every line."""
    wheel = fetch_wheel(ppocr.WHEEL, CACHE_DIR)
    full_bytes = ppocr.read_onnx(ppocr.RECOGNISER, wheel)
    characters = ppocr.characters_of(full_bytes)
    full = ort.InferenceSession(full_bytes, providers=["CPUExecutionProvider"])
    reduced = ort.InferenceSession(ppocr.best_of_columns(full_bytes),
                                   providers=["CPUExecutionProvider"])

    def read_full(x: np.ndarray) -> Columns:
        return best_of(full.run(None, {"x": x})[0])

    def read_reduced(x: np.ndarray) -> Columns:
        best, probability = reduced.run([BEST_CLASS, BEST_PROBABILITY], {"x": x})
        return best, probability

    lines, texts = rendered_lines()
    ours = recognise(read_reduced, lines, characters, 16)
    theirs = recognise(read_full, lines, characters, 16)
    assert ours == theirs
    # Not two empty readings: the lines are read, and read well.
    assert len(lines) >= 16
    assert cer("\n".join(r.text for r in ours), "\n".join(texts)) < 0.03
    assert len({r.score for r in ours}) > len(ours) // 2


def test_a_recogniser_not_ending_in_softmax_is_refused() -> None:
    wheel = fetch_wheel(ppocr.WHEEL, CACHE_DIR)
    with pytest.raises(ConversionError, match="not a Softmax"):
        ppocr.best_of_columns(ppocr.read_onnx(ppocr.ORIENTATION, wheel))


def test_the_character_list_comes_from_the_recognisers_metadata(
    built: tuple[Path, dict[str, object]],
) -> None:
    work, _ = built
    characters = json.loads((work / "characters.json").read_text("utf-8"))
    assert len(characters) == 18709 and characters[-1] == " "
    assert characters[:3] == ["!", '"', "#"] and "é" in characters and "中" in characters
    assert len(set(characters)) == len(characters)


def test_a_member_with_another_hash_is_refused() -> None:
    wheel = fetch_wheel(ppocr.WHEEL, CACHE_DIR)
    with pytest.raises(ConversionError, match="expected the pinned"):
        ppocr.read_onnx(replace(ppocr.ORIENTATION, sha256="0" * 64), wheel)


def test_a_network_answering_another_shape_is_refused() -> None:
    wheel = fetch_wheel(ppocr.WHEEL, CACHE_DIR)
    data = ppocr.read_onnx(ppocr.ORIENTATION, wheel)
    with pytest.raises(ConversionError, match="expected"):
        ppocr.check_member(replace(ppocr.ORIENTATION, check_output=(2, 3)), data)
