"""``who`` on real photos, in process: enrol a person from one photo and recognise them in
others (rotated, mirrored, turned by EXIF), a different person is unknown, ``forget`` really
forgets, another app's gallery is refused, and records keep names and scores, not vectors."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from argus.contracts import AskOptions
from argus.core import Core
from argus.errors import BadInput, Forbidden, NotFound
from argus.galleries.enrol import enrol_photos
from argus.models.apps import AppPins


def jpeg(rgb: np.ndarray, exif_orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(rgb)
    if exif_orientation is None:
        image.save(buf, format="JPEG", quality=92)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buf, format="JPEG", quality=92, exif=exif)
    return buf.getvalue()


def rgb_of(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def who(core: Core, loop: asyncio.AbstractEventLoop, data: bytes, gallery: str,
        app: str | None = None, record: bool = False) -> dict[str, Any]:
    options = AskOptions(gallery=gallery, app=app, record=record)
    return loop.run_until_complete(core.ask("who", data, options)).to_json()


def names(answer: dict[str, Any]) -> list[str | None]:
    return [f["name"] for f in answer["answer"]["faces"]]


def enrol(core: Core, loop: asyncio.AbstractEventLoop, gallery: str, person: str,
          photos: dict[str, bytes], **kw: Any) -> dict[str, Any]:
    return loop.run_until_complete(enrol_photos(
        core.ask, core.gallery_store, gallery, person, list(photos.items()), actor="test", **kw
    ))


def test_enrolled_from_one_photo_recognised_in_others(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    core.gallery_store.create("staff", actor="test")
    done = enrol(core, loop, "staff", "Barack Obama", {"obama2.jpg": people_photos["obama2"]})
    assert done["enrolled"] == 1 and done["photos_kept"] == 0
    answer = who(core, loop, people_photos["obama3"], "staff")
    (face,) = answer["answer"]["faces"]
    assert face["name"] == "Barack Obama" and face["similarity"] >= 0.6
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    assert answer["answer"]["threshold"] == pytest.approx(0.363)
    assert answer["answer"]["gallery"] == "staff"
    assert "Barack Obama" in names(who(core, loop, people_photos["obama"], "staff"))
    biden = who(core, loop, people_photos["biden"], "staff")
    assert names(biden) == [None]  # someone else: unknown, with the nearest score only
    assert biden["answer"]["faces"][0]["similarity"] < 0.363


def test_rotated_mirrored_and_exif_turned_photos_still_match(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    if "staff" not in core.gallery_store.names():
        core.gallery_store.create("staff")
        enrol(core, loop, "staff", "Barack Obama", {"obama2.jpg": people_photos["obama2"]})
    rgb = rgb_of(people_photos["obama3"])
    h, w = rgb.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    variants = {
        "mirrored": np.ascontiguousarray(rgb[:, ::-1]),
        "rotated 25 degrees": cv2.warpAffine(rgb, turn, (w, h), borderMode=cv2.BORDER_REFLECT),
    }
    for what, pixels in variants.items():
        assert names(who(core, loop, jpeg(pixels), "staff")) == ["Barack Obama"], what
    # Stored on its side with an EXIF tag saying to turn it back (as phones do).
    sideways = jpeg(np.ascontiguousarray(np.rot90(rgb, 1)), exif_orientation=6)
    assert names(who(core, loop, sideways, "staff")) == ["Barack Obama"]


def test_forget_really_forgets(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    core.gallery_store.create("temp", actor="test")
    enrol(core, loop, "temp", "Joe Biden", {"biden.jpg": people_photos["biden"]},
          keep_photo=True)
    assert core.gallery_store.show("temp").photos_kept == 1
    assert names(who(core, loop, people_photos["biden"], "temp")) == ["Joe Biden"]
    assert core.gallery_store.forget("temp", "Joe Biden", actor="test", reason="asked") == 1
    core.galleries.refresh(force=True)
    assert names(who(core, loop, people_photos["biden"], "temp")) == [None]
    info = core.gallery_store.show("temp")
    assert info.people == {} and info.photos_kept == 0


def test_a_gallery_of_another_app_is_refused(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    AppPins(core.engine).add("kiosk")
    AppPins(core.engine).add("web")
    core.gallery_store.create("door", app="kiosk")
    enrol(core, loop, "door", "Barack Obama", {"obama2.jpg": people_photos["obama2"]})
    assert names(who(core, loop, people_photos["obama"], "door", app="kiosk"))[0] == (
        "Barack Obama")
    with pytest.raises(Forbidden, match="belongs to app 'kiosk'"):
        who(core, loop, people_photos["obama"], "door", app="web")
    with pytest.raises(Forbidden):
        who(core, loop, people_photos["obama"], "door")


def test_who_needs_an_existing_gallery(
    core: Core, loop: asyncio.AbstractEventLoop, photos: dict[str, bytes]
) -> None:
    with pytest.raises(BadInput, match="gallery=NAME"):
        loop.run_until_complete(core.ask("who", photos["astronaut"]))
    with pytest.raises(NotFound, match="no gallery named 'nope'"):
        who(core, loop, photos["astronaut"], "nope")


def test_records_hold_names_and_scores_never_vectors(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    if "staff" not in core.gallery_store.names():
        core.gallery_store.create("staff")
        enrol(core, loop, "staff", "Barack Obama", {"obama2.jpg": people_photos["obama2"]})
    who(core, loop, people_photos["obama3"], "staff", record=True)
    core.records.flush()
    from argus.records.query import find_records

    (row,) = find_records(core.engine, question="who")
    text = json.dumps(row)
    assert "Barack Obama" in text and "embedding" not in text
    assert "similarity" in text


def test_the_embed_question_answers_vectors_for_admins_only(core: Core) -> None:
    assert core.answers_raw_vectors("embed") is True
    assert core.answers_raw_vectors("who") is False
    assert core.answers_raw_vectors("faces") is False


def test_a_recorded_embed_answer_keeps_no_vector(
    core: Core, loop: asyncio.AbstractEventLoop, people_photos: dict[str, bytes]
) -> None:
    answer = loop.run_until_complete(
        core.ask("embed", people_photos["biden"], AskOptions(record=True))).to_json()
    assert len(answer["answer"]["vectors"]["results"][0]["embedding"]) == 128  # answered
    core.records.flush()
    from argus.records.query import find_records

    (row,) = find_records(core.engine, question="embed")
    assert row["answer"]["vectors"]["results"] == [{"embedding_dims": 128}]  # not recorded
