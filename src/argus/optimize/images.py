"""The images an optimisation reads: calibration photos from a folder, and the held-out images
the agreement is measured on (a folder, or variants of the bundled sample photos: crops, scales
and flips), none of which may be (nearly) a calibration image.

Every image becomes the model's input row through the task's own ``prepare``, as serving does
it, so the calibration ranges and the comparison see what the server will feed the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from argus.errors import BadInput, NotFound
from argus.images import DecodedImage, Limits, decode
from argus.tasks.base import TaskModel
from argus.train.data import IMAGE_SUFFIXES

MAX_CALIBRATION = 200
"""Calibration photos read at most (sorted by name): MinMax ranges settle long before."""
MIN_HELD_OUT = 200
NEAR = 0.1
"""A held-out input whose mean |difference| from a calibration input is under this share of the
inputs' spread is the same picture (re-encoded or rescaled, which preprocessing undoes): it is
dropped from the held-out set. Measured on the sample photos: the same picture 0.01-0.08, the
nearest other crop 0.11."""
BUNDLED = ("coffee", "chelsea", "rocket", "astronaut", "china", "flower")

Progress = Callable[[int, int], None]


@dataclass
class Inputs:
    """Images as the model's input rows, with their names and the decoded images
    (``finish`` needs them to map a detector's boxes back)."""

    names: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    images: list[DecodedImage] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)

    def add(self, name: str, image: DecodedImage, row: np.ndarray) -> None:
        self.names.append(name)
        self.images.append(image)
        self.rows.append(row)
        self.digests.append(image.sha256)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def digest(self) -> str:
        """sha256 over the sorted image digests: the same photos give the same digest
        wherever they lie and whatever they are called."""
        return "sha256:" + hashlib.sha256("\n".join(sorted(self.digests)).encode()).hexdigest()


def _as_row(model: TaskModel, row: object) -> np.ndarray:
    """What ``prepare`` gave, as the model's input row: a task that does not prepare an image
    as one tensor cannot be calibrated at all."""
    if not isinstance(row, np.ndarray):
        raise BadInput(f"{model.package.name}'s task ({model.task}) does not prepare an image "
                       "as one input tensor, so it cannot be calibrated")
    return row


def from_folder(folder: Path, model: TaskModel, what: str, limit: int | None = None,
                progress: Progress | None = None) -> Inputs:
    """The readable images of ``folder`` (sorted, recursively), prepared for ``model``; the
    unreadable ones are skipped with the reason; none readable is refused."""
    if not folder.is_dir():
        raise NotFound(f"{what} folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower()
                   in IMAGE_SUFFIXES)
    out = Inputs()
    for i, path in enumerate(files):
        if limit is not None and len(out) >= limit:
            break
        try:
            image = decode(path.read_bytes(), Limits(), model.decode_size)
            row = model.prepare(image, {})
        except BadInput as exc:
            out.skipped.append({"path": str(path), "reason": exc.message})
        except OSError as exc:
            out.skipped.append({"path": str(path), "reason": str(exc)})
        else:
            out.add(str(path.relative_to(folder)), image, _as_row(model, row))
        if progress:
            progress(i + 1, len(files))
    if not len(out):
        others = sum(1 for p in folder.rglob("*") if p.is_file())
        why = (f"{len(files)} image files, none readable ({out.skipped[0]['reason']})" if files
               else f"{others} files, none with an image suffix "
               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        raise BadInput(f"{what} folder {folder} has no readable images: {why}")
    return out


def bundled_photos() -> dict[str, np.ndarray]:
    """The sample photos scikit-image and scikit-learn ship (RGB), by name."""
    try:
        import skimage.data
        from sklearn.datasets import load_sample_image
    except ImportError:
        raise BadInput("the default held-out images are made from scikit-image's and "
                       "scikit-learn's sample photos: pip install 'argus-vision[optimize]', or "
                       "give --held-out DIR") from None
    photos = {name: getattr(skimage.data, name)() for name in BUNDLED[:4]}
    photos.update({name: load_sample_image(f"{name}.jpg") for name in BUNDLED[4:]})
    return {k: np.ascontiguousarray(v[..., :3]) for k, v in photos.items()}


def variants(rgb: np.ndarray) -> Iterable[tuple[str, np.ndarray]]:
    """21 views of one photo, and as many of its mirror image: whole, scaled to 1/2 and 3/4,
    crops of 0.8 (corners and centre), 0.7 (corners) and 0.6 (a 3x3 grid) of each side."""
    for flipped in (False, True):
        img = np.ascontiguousarray(rgb[:, ::-1]) if flipped else rgb
        tag = "flip/" if flipped else ""
        h, w = img.shape[:2]
        yield f"{tag}whole", img
        for s in (0.5, 0.75):
            size = (max(1, round(w * s)), max(1, round(h * s)))
            yield f"{tag}scale{s}", cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        spots: dict[float, list[tuple[float, float]]] = {
            0.8: [(0, 0), (0, 1), (1, 0), (1, 1), (0.5, 0.5)],
            0.7: [(0, 0), (0, 1), (1, 0), (1, 1)],
            0.6: [(a, b) for a in (0, 0.5, 1) for b in (0, 0.5, 1)],
        }
        for s, places in spots.items():
            ch, cw = round(h * s), round(w * s)
            for fy, fx in places:
                top, left = round((h - ch) * fy), round((w - cw) * fx)
                crop = np.ascontiguousarray(img[top : top + ch, left : left + cw])
                yield f"{tag}crop{s}@{fy},{fx}", crop


def raw_image(rgb: np.ndarray) -> DecodedImage:
    digest = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()
                            + str(rgb.shape).encode()).hexdigest()
    h, w = rgb.shape[:2]
    return DecodedImage(rgb=rgb, width=w, height=h, sha256=digest, format="RAW")


def bundled(model: TaskModel, progress: Progress | None = None) -> Inputs:
    """The bundled photos' variants (252), prepared for ``model``."""
    out = Inputs()
    views = [(f"{name}/{tag}", rgb) for name, photo in bundled_photos().items()
             for tag, rgb in variants(photo)]
    for i, (name, rgb) in enumerate(views):
        image = raw_image(rgb)
        out.add(name, image, _as_row(model, model.prepare(image, {})))
        if progress:
            progress(i + 1, len(views))
    return out


def _thumb(row: np.ndarray) -> np.ndarray:
    """A coarse copy of an input row to compare by (every 4th value along each axis)."""
    return np.asarray(row[tuple(slice(None, None, 4) for _ in row.shape)], np.float32).ravel()


def drop_near_calibration(held: Inputs, calibration: Inputs) -> list[str]:
    """Remove from ``held`` every image whose input is (nearly) a calibration input; the
    removed names."""
    cal = np.stack([_thumb(r) for r in calibration.rows])
    spread = float(cal.std()) or 1.0
    keep: list[int] = []
    dropped: list[str] = []
    cal_digests = set(calibration.digests)
    for i, row in enumerate(held.rows):
        thumb = _thumb(row)
        if thumb.shape != cal.shape[1:]:
            raise BadInput("held-out and calibration inputs differ in shape; the model's input "
                           "size must be fixed to calibrate it")
        near = float(np.abs(cal - thumb).mean(axis=1).min()) < NEAR * spread
        if near or held.digests[i] in cal_digests:
            dropped.append(held.names[i])
        else:
            keep.append(i)
    held.names = [held.names[i] for i in keep]
    held.rows = [held.rows[i] for i in keep]
    held.images = [held.images[i] for i in keep]
    held.digests = [held.digests[i] for i in keep]
    return dropped
