"""``POST /v1/train`` end to end: a real server and a real worker on a pulled home; a zip of
photos in, a new version out, asked over REST."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import skimage.data

from tests.conftest import ServerProcess, copy_home, jpeg, serving_with_worker, wait_for_job
from tests.train.conftest import write_coffee_or_cat


@pytest.fixture(scope="module")
def served(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server and one worker for the module, on a private copy of the pulled home."""
    home = copy_home(pulled_home, tmp_path_factory.mktemp("train-home") / "home")
    with serving_with_worker(home) as server:
        yield server


def zipped(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(folder.rglob("*.jpg")):
            archive.write(path, f"photos/{path.relative_to(folder)}")
    return buf.getvalue()


def wait_done(url: str, job_id: str, timeout: float = 240) -> dict[str, Any]:
    """The finished job, with ``seen_progress``: whether any look found progress written."""
    looks: list[bool] = []
    job = wait_for_job(url, job_id, timeout, lambda j: looks.append(bool(j.get("progress"))))
    job["seen_progress"] = any(looks)
    return job


def test_a_zip_of_photos_becomes_an_askable_version(
    served: ServerProcess, tmp_path: Path
) -> None:
    server = served
    data = zipped(write_coffee_or_cat(tmp_path / "photos", 8))
    r = httpx.post(f"{server.url}/v1/train", files={"zip": ("photos.zip", data)},
                   data={"name": "coffee-or-cat", "mode": "head", "val": "0.25"}, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_done(server.url, r.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["progress"]["stage"] and job["progress"]["total"] >= 1
    result = job["answer"]
    assert result["version"]["name"] == "coffee-or-cat" and result["version"]["version"] == 1
    assert result["report"]["held_out"]["accuracy"] == 1.0

    photo = jpeg(skimage.data.coffee())
    answer = httpx.post(f"{server.url}/v1/questions/coffee-or-cat", content=photo, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["answer"]["labels"][0]["label"] == "coffee"

    shown = httpx.get(f"{server.url}/v1/models/coffee-or-cat/versions/1").json()
    assert shown["source"]["kind"] == "trained"
    assert shown["report"]["held_out"]["confusion"] == [[2, 0], [0, 2]]
    pictures = shown["pictures"]
    assert len(pictures) == 2
    png = httpx.get(f"{server.url}{pictures[0]}")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert httpx.get(f"{server.url}/v1/models/coffee-or-cat/versions/1/pictures/x.png"
                     ).status_code == 404


def test_photos_with_labels_and_bad_uploads(served: ServerProcess, tmp_path: Path) -> None:
    server = served
    folder = write_coffee_or_cat(tmp_path / "photos", 5)
    files = [("photo", (p.name, p.read_bytes())) for p in sorted(folder.rglob("*.jpg"))]
    labels = [p.parent.name for p in sorted(folder.rglob("*.jpg"))]
    r = httpx.post(f"{server.url}/v1/train", files=files,
                   data={"name": "cc", "mode": "head", "label": labels}, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_done(server.url, r.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["answer"]["report"]["lineage"]["dataset"]["images"] == 10

    bad = [
        ({"zip": ("x.zip", b"not a zip")}, {"name": "cc"}, 400, "not a zip"),
        ({"zip": ("x.zip", zipped(folder))}, {"name": "cc", "base": "nope"}, 404, "nope"),
        ({"zip": ("x.zip", zipped(folder))}, {"name": "cc", "mode": "fast"}, 400, "mode"),
        (files[:2], {"name": "cc", "label": ["cat"]}, 400, "one label per photo"),
    ]
    for up, fields, status, reason in bad:
        r = httpx.post(f"{server.url}/v1/train", files=up, data=fields, timeout=30)
        assert r.status_code == status, (fields, r.text)
        assert reason in r.text

    # photos whose training fails (one class only) end as a dead job with the reason
    one_class = zipped(folder / "cat")
    r = httpx.post(f"{server.url}/v1/train", files={"zip": ("x.zip", one_class)},
                   data={"name": "cc", "mode": "head"}, timeout=30)
    job = wait_done(server.url, r.json()["id"])
    assert job["status"] == "dead" and "at least two classes" in job["error"]


def test_dataset_server_trains_on_the_models_dataset_folder(
    served: ServerProcess, tmp_path: Path
) -> None:
    """``dataset=server``: the photos labelled into the model's dataset folder on the server
    (where the review tab files them), zipped when the job is submitted."""
    server = served
    url = f"{server.url}/v1/train"
    missing = httpx.post(url, files={"dataset": (None, "server")}, data={"name": "cups"})
    assert missing.status_code == 404 and "no labelled photos" in missing.json()["error"]
    write_coffee_or_cat(server.home / "datasets" / "cups", 5, seed=3)
    wrong = httpx.post(url, files={"dataset": (None, "laptop")}, data={"name": "cups"})
    assert wrong.status_code == 400 and "'server'" in wrong.json()["error"]
    photo = ("photo", ("a.jpg", jpeg(skimage.data.coffee())))
    both = httpx.post(url, files=[photo], data={"name": "cups", "dataset": "server",
                                                "label": ["coffee"]})
    assert both.status_code == 400 and "not more than one" in both.json()["error"]

    r = httpx.post(url, files={"dataset": (None, "server")},
                   data={"name": "cups", "mode": "head"}, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_done(server.url, r.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["answer"]["report"]["lineage"]["dataset"]["classes"] == {"cat": 5, "coffee": 5}
    assert job["answer"]["version"]["name"] == "cups"
