from __future__ import annotations

import numpy as np

from argus.train import head


def test_the_head_separates_separable_classes_and_folds_its_scaling() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, size=(3, 20))
    y = np.repeat(np.arange(3), 30)
    x = (centres[y] + rng.normal(0, 1, size=(90, 20)) + 100).astype(np.float32)
    fitted, losses = head.fit(x, y, 3)
    assert losses[-1] < losses[0] / 5
    assert np.mean(fitted.logits(x).argmax(1) == y) == 1.0
    w, b = fitted.folded()
    np.testing.assert_allclose(x @ w.T + b, fitted.logits(x), rtol=1e-3, atol=1e-3)


def test_classes_are_weighted_so_a_small_one_is_not_ignored() -> None:
    rng = np.random.default_rng(1)
    y = np.array([0] * 95 + [1] * 5)
    x = rng.normal(0, 1, size=(100, 4)).astype(np.float32)
    x[y == 1, 0] += 1.5  # weakly separable: unweighted, class 1 is never guessed
    fitted, _ = head.fit(x, y, 2)
    assert (fitted.logits(x[y == 1]).argmax(1) == 1).sum() >= 3
