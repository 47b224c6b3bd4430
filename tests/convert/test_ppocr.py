"""The pinned rapidocr wheel's three ONNX members, copied as the ppocr package."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from argus.convert import ppocr
from argus.convert.graph import ConversionError
from argus.convert.wheels import fetch_wheel
from tests.convert.conftest import CACHE_DIR


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    work = tmp_path_factory.mktemp("ppocr")
    return work, ppocr.build(work, CACHE_DIR)


def test_the_files_are_the_wheels_members_byte_for_byte(
    built: tuple[Path, dict[str, object]],
) -> None:
    work, fields = built
    assert fields["models"] == {
        "detector": "detector.onnx", "recogniser": "recogniser.onnx",
        "orientation": "orientation.onnx",
    }
    for member in ppocr.MEMBERS:
        data = (work / f"{member.role}.onnx").read_bytes()
        assert hashlib.sha256(data).hexdigest() == member.sha256
    source = fields["source"]
    assert isinstance(source, dict)
    assert [w["member"] for w in source["wheels"]] == [m.path for m in ppocr.MEMBERS]
    assert source["conversion_check"]["runs"]["recogniser"]["output"] == [2, 20, 18710]
    assert fields["license"] == "Apache-2.0" and fields["task"] == "text"


def test_the_character_list_comes_from_the_recognisers_metadata(
    built: tuple[Path, dict[str, object]],
) -> None:
    work, _ = built
    characters = json.loads((work / "characters.json").read_text("utf-8"))
    assert len(characters) == 18709 and characters[-1] == " "
    assert characters[:3] == ["!", '"', "#"] and "é" in characters and "中" in characters
    assert len(set(characters)) == len(characters)


def test_a_member_with_another_hash_is_refused() -> None:
    wheel = fetch_wheel(ppocr.WHEEL, CACHE_DIR)
    with pytest.raises(ConversionError, match="expected the pinned"):
        ppocr.read_onnx(replace(ppocr.ORIENTATION, sha256="0" * 64), wheel)


def test_a_network_answering_another_shape_is_refused() -> None:
    wheel = fetch_wheel(ppocr.WHEEL, CACHE_DIR)
    data = ppocr.read_onnx(ppocr.ORIENTATION, wheel)
    with pytest.raises(ConversionError, match="expected"):
        ppocr.check_member(replace(ppocr.ORIENTATION, check_output=(2, 3)), data)
