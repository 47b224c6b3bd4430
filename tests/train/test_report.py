from __future__ import annotations

import io

import numpy as np
from PIL import Image

from argus.train.report import confusion_png, curves_png, recommend_threshold, score


def test_scores_per_class_and_the_confusion_matrix() -> None:
    # truth: a a a b b c ; guesses: a a b b b a
    probs = np.array([
        [0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3],
    ])
    report = score(probs, [0, 0, 0, 1, 1, 2], ["a", "b", "c"], [f"p{i}" for i in range(6)])
    assert report["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report["accuracy"] == round(4 / 6, 4)
    a, b, c = report["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == (round(2 / 3, 4), round(2 / 3, 4), 3)
    assert (b["precision"], b["recall"]) == (round(2 / 3, 4), 1.0)
    assert (c["precision"], c["recall"], c["f1"]) == (0.0, 0.0, 0.0)
    assert report["macro_f1"] == round((2 / 3 + 0.8 + 0) / 3, 4)
    # the most confident mistake first
    assert [m["path"] for m in report["worst_mistakes"]] == ["p2", "p5"]
    assert report["worst_mistakes"][0] == {"path": "p2", "label": "a", "guess": "b",
                                           "score": 0.6}


def test_the_threshold_is_the_lowest_score_that_keeps_answers_precise() -> None:
    top = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)
    t = recommend_threshold(top, correct)
    assert t["value"] == 0.7 and t["precision"] == 1.0 and t["coverage"] == round(5 / 7, 4)
    never = recommend_threshold(np.array([0.9, 0.8]), np.array([False, True]))
    assert never["value"] is None and "precision" in never["why"]
    perfect = recommend_threshold(np.array([0.99, 0.7]), np.array([True, True]))
    assert perfect["value"] is None and "all 2 held-out answers were right" in perfect["why"]


def test_the_pictures_are_pngs_sized_to_their_content() -> None:
    small = Image.open(io.BytesIO(confusion_png([[3, 1], [0, 4]], ["coffee", "cat"])))
    big = Image.open(io.BytesIO(confusion_png(np.eye(10, dtype=int).tolist(),
                                              [str(i) for i in range(10)])))
    assert small.format == big.format == "PNG"
    # wide enough for its title, however few the classes: nothing drawn at the right edge
    title_band = np.asarray(small.convert("RGB"))[:30].astype(int)
    assert (title_band[:, -4:] == 255).all()
    assert big.size[1] > 10 * 22
    # the diagonal of a perfect matrix is green, not red
    rgb = np.asarray(big.convert("RGB")).astype(int)
    greenish = (rgb[..., 1] > rgb[..., 0] + 40).sum()
    reddish = (rgb[..., 0] > rgb[..., 1] + 40).sum()
    assert greenish > 1000 and reddish == 0
    curves = Image.open(io.BytesIO(curves_png({"loss": [2.0, 1.0, 0.5], "acc": [0.5, 0.9]}, "t")))
    assert curves.format == "PNG" and curves.size[1] >= 2 * 150
