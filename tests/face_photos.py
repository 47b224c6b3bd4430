"""Photos of the same people across several pictures, for the face questions' tests.

They come from the source distribution of ``face_recognition==1.3.0`` on PyPI (its own test
photos), fetched and pinned by sha256 the way pulls fetch wheels, and never committed. Read
with :func:`face_photos`; names are the file stems (``obama``, ``obama2``, ``biden``, …).
"""

from __future__ import annotations

from pathlib import Path

from argus.convert.wheels import PinnedWheel, fetch_wheel, read_member

CACHE_DIR = Path.home() / ".cache" / "argus"

SDIST = PinnedWheel(
    "face_recognition",
    "1.3.0",
    "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    sdist=True,
)
FOLDER = "face_recognition-1.3.0/tests/test_images"
#: Who is in each photo. ``obama_partial_face*`` show half a face; ``32bit`` is a PNG with alpha.
PEOPLE = {
    "obama": "obama",
    "obama2": "obama",
    "obama3": "obama",
    "obama_partial_face": "obama",
    "obama_partial_face2": "obama",
    "biden": "biden",
}


def face_photos(cache_dir: Path = CACHE_DIR) -> dict[str, bytes]:
    """The photos' encoded bytes by name (downloading the pinned sdist once)."""
    sdist = fetch_wheel(SDIST, cache_dir)
    return {name: read_member(sdist, f"{FOLDER}/{name}.jpg") for name in PEOPLE}
