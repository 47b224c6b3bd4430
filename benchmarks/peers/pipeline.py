"""Decode + preprocess + ONNX Runtime for EfficientNet-Lite0, shared by the ceiling and the peers.

Only numpy, Pillow and onnxruntime: the peers import this file from their own virtual
environments. The steps match Argus's classify task: JPEG ``draft`` decode to the smallest DCT
scale whose shorter side is still >= 256, resize of the region that survives the 224 centre crop
(bilinear), RGB, (x - 127) / 128, NCHW float32; softmax and top-5 on the way out.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

RESIZE_SHORTER = 256
CROP = 224
MEAN = 127.0
STD = 128.0
INPUT_NAME = "input"
TOP_K = 5


def decode(data: bytes) -> Image.Image:
    """RGB image decoded at the smallest JPEG scale that still covers the resize."""
    img = Image.open(io.BytesIO(data))
    if img.format == "JPEG":
        w, h = img.size
        factor = RESIZE_SHORTER / min(w, h)
        if factor < 1:
            img.draft("RGB", (math.ceil(w * factor), math.ceil(h * factor)))
    img.load()
    return img if img.mode == "RGB" else img.convert("RGB")


def preprocess(img: Image.Image) -> np.ndarray:
    """3x224x224 float32: resize only the region that survives the centre crop, normalise."""
    w, h = img.size
    scale = RESIZE_SHORTER / min(w, h)
    nw, nh = max(CROP, round(w * scale)), max(CROP, round(h * scale))
    left, top = (nw - CROP) / 2 / scale, (nh - CROP) / 2 / scale
    box = (left, top, left + CROP / scale, top + CROP / scale)
    img = img.resize((CROP, CROP), Image.Resampling.BILINEAR, box=box)
    arr = np.asarray(img, dtype=np.float32)
    arr = (arr - MEAN) * (1.0 / STD)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def prepare(data: bytes) -> np.ndarray:
    return preprocess(decode(data))


def make_session(model_path: str | Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def load_labels(package_dir: str | Path) -> list[str]:
    return (Path(package_dir) / "labels.txt").read_text().splitlines()


def top_k(logits: np.ndarray, labels: list[str], k: int = TOP_K) -> list[dict[str, Any]]:
    """Softmax over one row of logits, the k best as ``{"label", "index", "score"}``."""
    z = np.exp(logits - logits.max())
    probs = z / z.sum()
    best = np.argsort(probs)[::-1][:k]
    return [{"label": labels[i], "index": int(i), "score": round(float(probs[i]), 6)} for i in best]


class Classifier:
    """The model as a peer loads it: package directory and threads from the environment."""

    def __init__(self, package_dir: str | None = None, threads: int | None = None) -> None:
        package_dir = package_dir or os.environ["PEER_MODEL_DIR"]
        threads = threads or int(os.environ.get("PEER_THREADS", "1"))
        self.session = make_session(Path(package_dir) / "model.onnx", threads)
        self.labels = load_labels(package_dir)

    def predict_batch(self, batch: np.ndarray) -> list[list[dict[str, Any]]]:
        logits = self.session.run(None, {INPUT_NAME: batch})[0]
        return [top_k(row, self.labels) for row in logits]

    def classify(self, data: bytes) -> dict[str, Any]:
        return {"labels": self.predict_batch(prepare(data)[None])[0]}
