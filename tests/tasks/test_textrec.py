"""Line cutting, width buckets and CTC decoding, on arrays made here (the networks themselves
are exercised in test_text.py)."""

from __future__ import annotations

import numpy as np
import pytest

from argus.tasks.textrec import (
    BUCKET,
    COLUMNS_PER_RUN,
    LINE_HEIGHT,
    MAX_WIDTH,
    best_of,
    bucket_width,
    ctc_greedy,
    cut_line,
    in_buckets,
    recognise,
    text_corners,
)

CHARS = ["a", "b", "c", " "]


def one_hot(classes: list[int], n: int = len(CHARS) + 1, p: float = 0.9) -> np.ndarray:
    probs = np.full((len(classes), n), (1 - p) / (n - 1), dtype=np.float32)
    probs[np.arange(len(classes)), classes] = p
    return probs


def columns(classes: list[int], p: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """One line's best classes and their probabilities, as the recogniser answers them."""
    best, probability = best_of(one_hot(classes, p=p)[None])
    return best[0], probability[0]


def test_best_of_is_each_columns_first_largest_probability() -> None:
    probs = np.array([[[0.1, 0.7, 0.2], [0.4, 0.2, 0.4], [0.0, 0.0, 1.0]]], np.float32)
    best, probability = best_of(probs)
    assert best.tolist() == [[1, 0, 2]]
    assert probability[0].tolist() == pytest.approx([0.7, 0.4, 1.0])


def test_ctc_merges_repeats_and_drops_blanks() -> None:
    # a a _ a b b _ _ c (blank = 0) reads "aabc": a blank separates the two a's.
    reading = ctc_greedy(*columns([1, 1, 0, 1, 2, 2, 0, 0, 3]), CHARS, 9)
    assert reading.text == "aabc" and reading.score == pytest.approx(0.9)
    assert ctc_greedy(*columns([0, 0, 0]), CHARS, 3).text == ""
    assert ctc_greedy(*columns([4, 1]), CHARS, 2).text == " a"


def test_the_score_is_the_mean_probability_of_the_characters_kept() -> None:
    best = np.array([1, 1, 0, 2])
    probability = np.array([0.9, 0.5, 0.99, 0.6], np.float32)
    # The repeated a and the blank are not characters: (0.9 + 0.6) / 2.
    assert ctc_greedy(best, probability, CHARS, 4).score == pytest.approx(0.75)


def test_ctc_ignores_the_columns_that_saw_padding() -> None:
    line = columns([1, 2, 3, 3, 1])
    assert ctc_greedy(*line, CHARS, 3).text == "abc"
    assert ctc_greedy(*line, CHARS, 0).text == "a"  # at least one column


def test_buckets_cover_every_width_and_cap_batches() -> None:
    # Every 8 px, the recogniser's stride: a line is padded by at most 7 columns.
    assert bucket_width(1) == BUCKET == 8 and bucket_width(97) == 104
    assert bucket_width(1076) == 1080
    assert bucket_width(10_000) == MAX_WIDTH
    groups = in_buckets([300, 60, 310, 90, 62, 700], max_batch=2)
    assert groups == [(64, [1, 4]), (96, [3]), (304, [0]), (312, [2]), (704, [5])]
    assert in_buckets([50] * 5, max_batch=2) == [(56, [0, 1]), (56, [2, 3]), (56, [4])]
    # Wide lines run fewer at a time: at most 4,096 columns (38 MB of output) per run.
    assert COLUMNS_PER_RUN // 1504 == 2 and COLUMNS_PER_RUN // MAX_WIDTH == 1
    assert [len(m) for _, m in in_buckets([1500] * 5, max_batch=16)] == [2, 2, 1]
    assert [len(m) for _, m in in_buckets([250] * 20, max_batch=16)] == [16, 4]


def test_recognise_runs_one_batch_per_bucket_and_keeps_line_order() -> None:
    seen: list[tuple[int, ...]] = []

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append(batch.shape)
        # Every line "says" its own width class: column 0 of a line w px wide is class
        # 1 + (w > 100), the rest blank.
        out = np.zeros((batch.shape[0], batch.shape[3] // 8, len(CHARS) + 1), np.float32)
        out[:, :, 0] = 1.0
        for i, row in enumerate(batch):
            filled = int((np.abs(row[0, 0]) > 0).sum())
            out[i, 0] = 0.0
            out[i, 0, 1 + (filled > 100)] = 1.0
        return best_of(out)

    lines = [np.full((LINE_HEIGHT, w, 3), 255, np.uint8) for w in (150, 60, 146, 58)]
    readings = recognise(run, lines, CHARS, max_batch=8)
    assert [r.text for r in readings] == ["b", "a", "b", "a"]
    assert sorted(seen) == [(2, 3, 48, 64), (2, 3, 48, 152)]


def test_cut_line_straightens_a_slanted_quadrilateral() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    quad = np.array([[20, 40], [180, 20], [182, 44], [22, 64]], np.float32)
    import cv2

    cv2.fillPoly(image, [quad.astype(np.int32)], (255, 255, 255))
    line = cut_line(image, quad)
    assert line.shape[0] == LINE_HEIGHT and 300 < line.shape[1] < 340
    assert line[5:-5, 5:-5].min() > 200  # all inside the quadrilateral


def test_a_tall_region_is_read_as_a_column_turned_a_quarter() -> None:
    tall = np.array([[10, 0], [30, 0], [30, 100], [10, 100]], np.float32)
    turned = text_corners(tall)
    assert turned.tolist() == [[30, 0], [30, 100], [10, 100], [10, 0]]
    wide = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float32)
    assert text_corners(wide) is wide


def test_a_tall_line_is_shrunk_by_area_and_a_long_one_capped() -> None:
    image = np.random.default_rng(0).integers(0, 255, (400, 3000, 3), dtype=np.uint8)
    big = np.array([[0, 0], [600, 0], [600, 200], [0, 200]], np.float32)
    assert cut_line(image, big).shape == (LINE_HEIGHT, 144, 3)
    long = np.array([[0, 0], [2999, 0], [2999, 20], [0, 20]], np.float32)
    assert cut_line(image, long).shape == (LINE_HEIGHT, MAX_WIDTH, 3)
