"""argus.http.records in process: what ``?record=true`` stores, as ``GET /v1/records`` shows it,
and the filters not covered by tests/graphs/test_records.py (image, app, source, until)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.http.conftest import APP, flush_records
from tests.inprocess import AppClient


def without_crops(answer: dict[str, Any]) -> dict[str, Any]:
    faces = [{k: v for k, v in face.items() if k != "crop_png"} for face in answer["faces"]]
    return {**answer, "faces": faces}


def test_a_record_keeps_the_answer_without_its_pictures(
    app: AppClient, photos: dict[str, bytes]
) -> None:
    image = photos["astronaut"] + b"#record-crops"  # bytes no other test records
    answered = app.post("/v1/questions/faces", params={"crops": "true", "record": "true"},
                        headers={"X-Argus-App": APP}, content=image)
    assert answered.status_code == 200, answered.text
    answer = answered.json()
    assert "crop_png" in answer["answer"]["faces"][0]
    flush_records(app)

    records = app.get("/v1/records", params={"image": answer["image"]["sha256"]}).json()
    assert len(records) == 1
    record = records[0]
    assert (record["question"], record["source"], record["app"]) == ("faces", "http", APP)
    assert (record["width"], record["height"]) == (512, 512)
    assert record["models"] == answer["models"]
    assert record["answer"] == without_crops(answer["answer"])
    assert record["timings"]["steps"] == {"faces": answer["steps"]["faces"]["ms"]}


def test_records_filter_by_image_app_source_and_time(
    app: AppClient, photos: dict[str, bytes]
) -> None:
    image = photos["china"] + b"#record-filters"
    sha = hashlib.sha256(image).hexdigest()
    before = datetime.now(UTC) - timedelta(seconds=1)
    for headers in ({"X-Argus-App": APP}, {}):
        answered = app.post("/v1/questions/labels", params={"record": "true"},
                            headers=headers, content=image)
        assert answered.status_code == 200, answered.text
    assert app.post("/v1/questions/labels", content=image).status_code == 200  # not recorded
    flush_records(app)

    def found(**params: str) -> list[dict[str, Any]]:
        response = app.get("/v1/records", params={"image": sha, **params})
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    assert [r["app"] for r in found()] == [None, APP]  # newest first
    assert [r["app"] for r in found(app=APP)] == [APP]
    assert len(found(source="http")) == 2 and found(source="grpc") == []
    assert found(until=before.isoformat()) == []
    assert len(found(since=before.isoformat(), until=datetime.now(UTC).isoformat())) == 2
    assert {r["answer"]["labels"][0]["label"] for r in found()} == {"palace"}
    used = found()[0]["models"][0]
    assert len(found(model=used["name"])) == 2
    assert len(found(model=f"{used['name']}:{used['version']}")) == 2
    assert found(model=f"{used['name']}:{used['version'] + 1}") == []
    assert found(model="mtcnn") == []
    for bad in (f"{used['name']}:", f"{used['name']}:0", f"{used['name']}@production", ":1"):
        assert app.get("/v1/records", params={"model": bad}).status_code == 422, bad
    for until in ("soon", ""):  # an empty time is a bad time, not no time
        bad = app.get("/v1/records", params={"until": until})
        assert bad.status_code == 400 and "until" in bad.json()["error"]
    assert app.get("/v1/records", params={"source": "carrier-pigeon"}).status_code == 422
