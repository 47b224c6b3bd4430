"""The ``attention`` op: for each face with a gaze, the nearest other thing along it.

It reads a face-attributes step run on a faces step's crops (``from:``, already in image
pixels), that faces step (``faces:``), and optionally a people step and any object-detecting
steps (``people:``, ``objects:``). A face whose gaze is "at the camera" looks at the camera;
otherwise every other face, person and object whose box the 2-D gaze ray passes through (or
misses by at most :data:`CONE` degrees) is a candidate, and the nearest along the
ray wins. A person is never their own target: boxes holding the looker's eyes are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from argus.errors import Conflict
from argus.graphs.ops import StepOutput

# How far (degrees) the ray may miss a box and still count: the gaze's own error on the
# photos the thresholds were set on is about this (a mirrored photo's gaze differs from the
# mirror of the original's by up to ~10°; README, Faces).
CONE = 10.0
AT_CAMERA = "at the camera"

Box = Sequence[float]


def _contains(box: Box, point: Sequence[float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _ray_hits_box(origin: Sequence[float], direction: Sequence[float], box: Box) -> bool:
    """Whether the ray from ``origin`` along ``direction`` passes through ``box`` (slabs)."""
    near, far = 0.0, math.inf
    for axis in (0, 1):
        lo, hi, o, d = box[axis], box[axis + 2], origin[axis], direction[axis]
        if abs(d) < 1e-12:
            if not lo <= o <= hi:
                return False
            continue
        t1, t2 = sorted(((lo - o) / d, (hi - o) / d))
        near, far = max(near, t1), min(far, t2)
    return near <= far


def _along(origin: Sequence[float], direction: Sequence[float], box: Box
           ) -> tuple[float, float] | None:
    """(distance along the ray to the box's centre, degrees between the ray and the box) for a
    box ahead of the looker that the ray meets or misses by at most :data:`CONE`; else None."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ahead = (cx - origin[0]) * direction[0] + (cy - origin[1]) * direction[1]
    if ahead <= 0:
        return None
    if _ray_hits_box(origin, direction, box):
        return ahead, 0.0
    # Seen from outside, a box spans the directions between two of its corners, so the ray's
    # nearest miss is its angle to the nearest corner.
    off = min(
        abs(math.degrees(math.atan2(
            (y - origin[1]) * direction[0] - (x - origin[0]) * direction[1],
            (x - origin[0]) * direction[0] + (y - origin[1]) * direction[1],
        )))
        for x in (box[0], box[2])
        for y in (box[1], box[3])
    )
    return (ahead, off) if off <= CONE else None


def _items(results: list[tuple[str, dict[str, Any]]], key: str) -> list[tuple[str, int, Any]]:
    return [
        (step, i, item)
        for step, result in results
        for i, item in enumerate(result.get(key) or [])
        if isinstance(item, Mapping) and isinstance(item.get("box"), list | tuple)
    ]


def attention(
    source: Mapping[str, Any],
    step: str,
    others: Mapping[str, list[tuple[str, dict[str, Any]]]],
) -> StepOutput:
    """``{"count": N, "attention": [{"face", "box", "gaze", "looking_at"}, …]}``, one item per
    face of the faces step, in its order."""
    results = source.get("results")
    if not isinstance(results, list):
        raise Conflict(f"op attention needs per-crop face attributes, but step {step!r} "
                       "answered none")
    faces = _items(others.get("faces", []), "faces")
    if len(faces) != len(results):
        raise Conflict(f"op attention: step {step!r} has {len(results)} results for "
                       f"{len(faces)} faces; from: must run on the faces: step's crops")
    people = _items(others.get("people", []), "people")
    objects = _items(others.get("objects", []), "objects")
    items = []
    for i, (result, (_, _, face)) in enumerate(zip(results, faces, strict=True)):
        attrs = result.get("attributes") if isinstance(result, Mapping) else None
        gaze = attrs.get("gaze") if isinstance(attrs, Mapping) else None
        item: dict[str, Any] = {"face": i, "box": face["box"]}
        if not isinstance(gaze, Mapping):
            item.update(gaze=None, looking_at={"kind": "unknown", "why": "no face mesh"})
        else:
            item["gaze"] = gaze["word"]
            item["looking_at"] = _target(i, gaze, faces, people, objects)
        items.append(item)
    return StepOutput({"count": len(items), "attention": items})


def _target(
    me: int,
    gaze: Mapping[str, Any],
    faces: list[tuple[str, int, Any]],
    people: list[tuple[str, int, Any]],
    objects: list[tuple[str, int, Any]],
) -> dict[str, Any]:
    if gaze["word"] == AT_CAMERA:
        return {"kind": "camera"}
    origin, direction = gaze["origin"], gaze["direction"]
    hits: list[tuple[float, float, str, str, int, Any]] = []
    for kind, candidates in (("face", faces), ("person", people), ("object", objects)):
        for step, index, item in candidates:
            if kind == "face" and index == me:
                continue
            if kind != "face" and _contains(item["box"], origin):
                continue  # the looker's own body (or a box around them)
            found = _along(origin, direction, item["box"])
            if found is not None:
                hits.append((found[0], found[1], kind, step, index, item))
    if not hits:
        return {"kind": "nothing"}
    hits.sort(key=lambda hit: hit[0])
    distance, off, kind, step, index, item = hits[0]
    if kind == "person":
        # The person's own face, when the ray meets it too, says more than their body box.
        for hit in hits:
            if hit[2] == "face" and _contains(item["box"], _centre(hit[5]["box"])):
                distance, off, kind, step, index, item = hit
                break
    target: dict[str, Any] = {
        "kind": kind,
        "step": step,
        "index": index,
        "box": item["box"],
        "distance": round(distance, 1),
        "off_ray": round(off, 1),
    }
    if "label" in item:
        target["label"] = item["label"]
    return target


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
