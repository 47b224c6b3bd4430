"""The pinned mediapipe wheel and its .tflite members: fetched by platform, checked by sha256."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import onnx
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


def test_the_conversion_check_passes_a_good_conversion(
    mediapipe_tflite: dict[str, bytes], converted: dict[str, onnx.ModelProto]
) -> None:
    pytest.importorskip("openvino")
    member = mediapipe.POSE_DETECTION
    data, model = mediapipe_tflite[member.name], converted[member.name]
    check = mediapipe.conversion_check(member, data, model)
    assert check["checked"] is True
    assert 0 <= check["max_rel_diff"] <= mediapipe.TOLERANCE


def test_the_conversion_check_refuses_a_wrong_weight(
    mediapipe_tflite: dict[str, bytes], converted: dict[str, onnx.ModelProto]
) -> None:
    """One convolution's weights off by 1%: the check must notice."""
    pytest.importorskip("openvino")
    member = mediapipe.FACE_LANDMARK
    model = onnx.ModelProto()
    model.CopyFrom(converted[member.name])
    init = next(i for i in model.graph.initializer if i.name.endswith(".weight"))
    init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) * 1.01, init.name))
    with pytest.raises(ConversionError, match="differs from OpenVINO"):
        mediapipe.conversion_check(member, mediapipe_tflite[member.name], model)
