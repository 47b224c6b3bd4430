"""Enrolment from photos: one face per photo or the one named, all photos or none."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from argus.core import Core
from argus.errors import BadInput
from tests.galleries.test_who import enrol, jpeg, rgb_of


def test_enrolment_needs_one_face_per_photo_or_says_which(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes],
    photos: dict[str, bytes],
) -> None:
    core.gallery_store.create("picky")
    with pytest.raises(BadInput, match="no face was found"):
        enrol(core, loop, "picky", "x", {"coffee.jpg": photos["coffee"],
                                         "biden.jpg": people_photos["biden"]})
    assert core.gallery_store.show("picky").people == {}  # all or nothing
    two = np.concatenate([rgb_of(people_photos["biden"]), rgb_of(people_photos["biden"])], 1)
    with pytest.raises(BadInput, match="holds 2 faces; say which with face=N"):
        enrol(core, loop, "picky", "x", {"two.jpg": jpeg(two)})
    assert enrol(core, loop, "picky", "x", {"two.jpg": jpeg(two)}, face=1)["enrolled"] == 1
    with pytest.raises(BadInput, match="face=5 is not one of them"):
        enrol(core, loop, "picky", "x", {"two.jpg": jpeg(two)}, face=5)


def test_enrolment_checks_the_gallery_before_any_photo(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    from argus.errors import NotFound

    with pytest.raises(NotFound, match="no gallery named 'nowhere'"):
        enrol(core, loop, "nowhere", "x", {"biden.jpg": people_photos["biden"]})
    core.gallery_store.create("many")
    with pytest.raises(BadInput, match="at most 20 photos"):
        enrol(core, loop, "many", "x", {f"{i}.jpg": b"x" for i in range(21)})
