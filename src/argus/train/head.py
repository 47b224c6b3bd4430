"""A softmax head on frozen features, fitted with numpy alone (no torch, no scikit-learn).

Full-batch gradient descent with Adam on standardised features, L2-regularised, classes
weighted by their inverse frequency (an imbalanced set does not teach the head to ignore its
small classes). The standardisation is folded into the weights at export, so the served graph
is the base network with its last layer replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STEPS = 300
LEARNING_RATE = 0.05
L2 = 1e-3


@dataclass
class Head:
    weight: np.ndarray  # (classes, width), on standardised features
    bias: np.ndarray  # (classes,)
    mean: np.ndarray  # (width,)
    scale: np.ndarray  # (width,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weight.T + self.bias

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) that take raw features: ``x @ w.T + b == logits(x)``."""
        w = self.weight / self.scale
        return w.astype(np.float32), (self.bias - w @ self.mean).astype(np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    steps: int = STEPS,
    l2: float = L2,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Head, list[float]]:
    """The head and its training loss at each step."""
    x = x.astype(np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    # A floor under each feature's scale: a nearly constant feature would otherwise get a
    # huge weight once the scaling is folded in, which any later change of it blows up.
    scale = std + 0.05 * float(std.mean()) + 1e-6
    z = (x - mean) / scale
    n, width = z.shape
    onehot = np.eye(classes)[y]
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sample_w = (n / (classes * np.maximum(counts, 1)))[y][:, None]
    w = np.zeros((classes, width))
    b = np.zeros(classes)
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    beta1, beta2 = 0.9, 0.999
    losses: list[float] = []
    for step in range(1, steps + 1):
        p = softmax(z @ w.T + b)
        loss = -float(np.sum(sample_w[:, 0] * np.log(p[onehot > 0] + 1e-12)) / n)
        losses.append(loss + 0.5 * l2 * float(np.sum(w * w)))
        g = (p - onehot) * sample_w / n
        grads = [g.T @ z + l2 * w, g.sum(axis=0)]
        for i, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
            m[i] = beta1 * m[i] + (1 - beta1) * grad
            v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
            m_hat = m[i] / (1 - beta1**step)
            v_hat = v[i] / (1 - beta2**step)
            param -= LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)
        if progress and (step % 20 == 0 or step == steps):
            progress(step, steps)
    return Head(w, b, mean, scale), losses
