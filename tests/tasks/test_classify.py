"""Classification preprocessing: resize shorter side, centre crop, normalise, layout."""

from __future__ import annotations

import numpy as np

from argus.manifest import Preprocess
from argus.tasks.image_input import preprocess


def test_constant_image_normalises_exactly() -> None:
    x = np.full((300, 500, 3), (255, 127, 0), np.uint8)
    out = preprocess(x, Preprocess())
    assert out.shape == (3, 224, 224) and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert np.allclose(out[0], 1.0) and np.allclose(out[1], 0.0)
    assert np.allclose(out[2], -127 / 128)


def test_the_centre_survives_and_the_edges_are_cropped() -> None:
    x = np.zeros((256, 512, 3), np.uint8)
    x[:, 192:320] = 255  # a white band in the middle quarter
    out = preprocess(x, Preprocess(resize_shorter=256, crop=224))
    row = out[0, 112]
    # 512 wide -> crop keeps columns 144..368: the band (192..320) maps to 48..176
    assert row[60:164].min() > 0.99 and row[:40].max() < -0.99 and row[190:].max() < -0.99


def test_layouts_and_colour_orders_agree() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    nchw = preprocess(x, Preprocess())
    nhwc = preprocess(x, Preprocess(layout="NHWC"))
    bgr = preprocess(x[..., ::-1].copy(), Preprocess(color="BGR"))
    assert nhwc.shape == (224, 224, 3)
    assert np.array_equal(nchw.transpose(1, 2, 0), nhwc)
    assert np.array_equal(bgr, nchw)


def test_small_images_are_scaled_up() -> None:
    out = preprocess(np.full((50, 80, 3), 200, np.uint8), Preprocess())
    assert out.shape == (3, 224, 224)
    assert np.allclose(out, (200 - 127) / 128)
