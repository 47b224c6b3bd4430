"""Pinned distributions: a source distribution is fetched, checked and read like a wheel."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from PIL import Image

from argus.convert.wheels import WheelError, fetch_wheel, read_member
from tests.face_photos import PEOPLE, SDIST


def test_an_sdist_is_fetched_by_its_pin_and_its_members_read(
    people_photos: dict[str, bytes],
) -> None:
    assert set(people_photos) == set(PEOPLE)
    for data in people_photos.values():
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and min(img.size) > 200


def test_a_missing_member_and_a_wrong_pin_are_refused(tmp_path: Path) -> None:
    from tests.face_photos import CACHE_DIR

    sdist = fetch_wheel(SDIST, CACHE_DIR)
    with pytest.raises(WheelError, match="has no member"):
        read_member(sdist, "face_recognition-1.3.0/no/such/file.jpg")
    with pytest.raises(WheelError, match="has no member"):  # a folder is not a file
        read_member(sdist, "face_recognition-1.3.0/tests")
    wrong = dataclasses.replace(SDIST, sha256="0" * 64)
    with pytest.raises(WheelError, match="expected the pinned"):
        fetch_wheel(wrong, tmp_path)
    assert not (tmp_path / "wheels" / SDIST.filename).exists()
