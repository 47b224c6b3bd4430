"""Ultralytics-style letterboxing: fit inside the model input keeping aspect ratio, pad grey.

The geometry is a pure function of the image and input sizes, so ``finish`` recomputes it to
map boxes back instead of carrying it through the batcher.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Where an ``width`` x ``height`` image lands inside the model input."""

    gain: float  # input pixels per image pixel
    new_width: int
    new_height: int
    left: int
    top: int
    right: int
    bottom: int


def letterbox_geometry(height: int, width: int, input_h: int, input_w: int) -> Letterbox:
    """Same arithmetic as Ultralytics ``LetterBox`` (auto=False, scaleup=True, centred)."""
    gain = min(input_h / height, input_w / width)
    new_w, new_h = round(width * gain), round(height * gain)
    dw, dh = (input_w - new_w) / 2, (input_h - new_h) / 2
    # The ±0.1 puts the odd pixel of padding at the bottom/right, as Ultralytics does.
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return Letterbox(gain, new_w, new_h, left, top, right, bottom)


def letterbox(rgb: np.ndarray, input_h: int, input_w: int) -> np.ndarray:
    """HxWx3 uint8 RGB → 3 x input_h x input_w float32 in 0..1, letterboxed (NCHW order)."""
    h, w = rgb.shape[:2]
    geo = letterbox_geometry(h, w, input_h, input_w)
    if (geo.new_width, geo.new_height) != (w, h):
        # cv2's INTER_LINEAR (no antialiasing), as Ultralytics trains and predicts with.
        rgb = cv2.resize(rgb, (geo.new_width, geo.new_height), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((input_h, input_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[geo.top : geo.top + geo.new_height, geo.left : geo.left + geo.new_width] = rgb
    chw = canvas.transpose(2, 0, 1).astype(np.float32)
    chw *= 1.0 / 255.0
    return chw


def unletterbox(
    boxes: np.ndarray, image_h: int, image_w: int, input_h: int, input_w: int
) -> np.ndarray:
    """xyxy boxes in model-input pixels → xyxy in the (decoded) image, clipped to it."""
    geo = letterbox_geometry(image_h, image_w, input_h, input_w)
    out = boxes.astype(np.float64, copy=True)
    out[:, [0, 2]] -= geo.left
    out[:, [1, 3]] -= geo.top
    # The actual resize ratio per axis (not ``gain``), so rounding of the resized size is undone.
    out[:, [0, 2]] *= image_w / geo.new_width
    out[:, [1, 3]] *= image_h / geo.new_height
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, image_w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, image_h)
    return out
