"""Face attributes drawn for --draw: the gaze arrow along its ray, a ring for a gaze at the
camera, the words under the face, a dashed line to what the face looks at."""

from __future__ import annotations

import numpy as np
from PIL import Image

from argus.images.draw import GAZE_COLOUR, draw_on, face_words


def face(word: str, origin: list[float], end: list[float], direction: list[float]
         ) -> dict[str, object]:
    return {
        "score": 1.0, "box": [40.0, 40.0, 100.0, 110.0], "smile": 0.9, "smiling": True,
        "mouth_open": False, "eyes": {"left": {"open": True}, "right": {"open": False}},
        "head": {"yaw": 12.4, "pitch": -3.0, "roll": 1.0},
        "gaze": {"word": word, "origin": origin, "end": end, "direction": direction},
    }


def is_gaze(pixel: np.ndarray) -> bool:
    return bool(np.abs(pixel.astype(int) - GAZE_COLOUR).max() < 10)


def test_a_gaze_arrow_follows_its_ray_and_the_words_sit_under_the_face() -> None:
    body = {"attributes": [face("right", [70.0, 70.0], [170.0, 70.0], [1.0, 0.0])]}
    drawn = np.asarray(draw_on(Image.new("RGB", (240, 200), (90, 90, 90)), body))
    assert all(is_gaze(drawn[70, x]) for x in range(75, 165, 10))
    assert not is_gaze(drawn[20, 120])  # off the ray: the photo
    # The words: a black band under the box with white letters on it.
    band = drawn[112:124, 42:120]
    assert (band == 0).all(axis=2).any() and (band > 200).all(axis=2).any()
    assert face_words(body["attributes"][0]) == [
        "smiling 0.90", "right eye shut", "looks right", "yaw 12 pitch -3 roll 1"]


def test_a_gaze_at_the_camera_is_a_ring_and_attention_a_dashed_line() -> None:
    body = {
        "attributes": [face("at the camera", [70.0, 70.0], [71.0, 71.0], [0.7, 0.7])],
        "attention": [{"face": 0, "box": [40.0, 40.0, 100.0, 110.0],
                       "looking_at": {"kind": "face", "box": [160.0, 40.0, 220.0, 110.0]}}],
    }
    drawn = np.asarray(draw_on(Image.new("RGB", (240, 200), (90, 90, 90)), body))
    ring = [drawn[70 + dy, 70 + dx] for dx, dy in ((9, 0), (-9, 0), (0, 9), (0, -9))]
    assert sum(is_gaze(p) for p in ring) >= 3
    # From the looker's box centre (70, 75) to the target's (190, 75): dashes, not a line.
    row = [is_gaze(drawn[75, x]) for x in range(100, 160)]
    assert any(row) and not all(row)
    assert is_gaze(drawn[75, 160])  # the target's box is outlined
