"""The pinned mediapipe wheel and its .tflite members: fetched by platform, checked by sha256."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from argus.convert import mediapipe
from argus.convert.graph import ConversionError
from argus.convert.wheels import WheelError, fetch_wheel
from tests.convert.conftest import CACHE_DIR


def test_members_are_the_pinned_files(mediapipe_tflite: dict[str, bytes]) -> None:
    for member in mediapipe.MEMBERS:
        assert hashlib.sha256(mediapipe_tflite[member.name]).hexdigest() == member.sha256
        assert mediapipe_tflite[member.name][4:8] == b"TFL3"


def test_a_member_with_another_hash_is_refused() -> None:
    other = replace(mediapipe.POSE_DETECTION, sha256="0" * 64)
    with pytest.raises(ConversionError, match="expected the pinned"):
        mediapipe.read_tflite(other, CACHE_DIR)


def test_a_wheel_with_another_hash_is_refused_and_removed(tmp_path: Path) -> None:
    wheel = fetch_wheel(mediapipe.WHEEL, CACHE_DIR)
    (tmp_path / "wheels").mkdir()
    copy = tmp_path / "wheels" / wheel.name
    shutil.copyfile(wheel, copy)
    with pytest.raises(WheelError, match="refusing"):
        fetch_wheel(replace(mediapipe.WHEEL, sha256="f" * 64), tmp_path)
    assert not copy.exists()


def test_source_names_wheel_member_and_hashes() -> None:
    src = mediapipe.source(mediapipe.FACE_LANDMARK)
    assert src["wheel"] == mediapipe.WHEEL.filename
    assert src["sha256"] == mediapipe.WHEEL.sha256
    assert src["member"] == "mediapipe/modules/face_landmark/face_landmark.tflite"
    assert src["member_sha256"] == mediapipe.FACE_LANDMARK.sha256
    assert mediapipe.LICENSE == "Apache-2.0"
