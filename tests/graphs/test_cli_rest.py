"""`describe` and user graphs as a user meets them: the `argus` CLI in subprocesses and a real
`argus serve` on a loopback port."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import textwrap
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from argus.db.engine import make_engine
from argus.records import find_records
from argus.settings import Settings
from tests.conftest import ARGUS, ServerProcess, start_server


def argus(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARGUS_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([ARGUS, *args], env=env, capture_output=True, text=True, timeout=120)


def documents(stdout: str) -> list[dict]:
    return [json.loads(d) for d in stdout.replace("}\n{", "}\n\x00{").split("\x00")]


def test_describe_over_the_cli(pulled_home: Path, photo_dir: Path, tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    out = argus(pulled_home, "ask", "describe", str(photo_dir / "astronaut.jpg"),
                str(photo_dir / "coffee.jpg"), "--json", "--crops", str(crops))
    assert out.returncode == 0, out.stderr
    astronaut, coffee = documents(out.stdout)
    assert astronaut["question"] == "describe"
    assert [m["name"] for m in astronaut["models"]] == ["efficientnet-lite0", "mtcnn"]
    assert set(astronaut["answer"]) == {"labels", "faces", "aligned"}
    assert len(astronaut["answer"]["faces"]["faces"]) == 1
    aligned = astronaut["answer"]["aligned"]
    assert aligned["count"] == 1 and aligned["size"] == 112
    crop = Image.open(aligned["crops"][0]["file"])
    assert crop.size == (112, 112)
    assert set(astronaut["steps"]) == {"labels", "faces", "aligned"}
    assert coffee["answer"]["labels"]["labels"][0]["label"] == "espresso"
    assert coffee["answer"]["faces"] == {"faces": []}
    assert coffee["answer"]["aligned"]["count"] == 0
    table = argus(pulled_home, "ask", "describe", str(photo_dir / "astronaut.jpg"))
    assert table.returncode == 0, table.stderr
    assert "aligned" in table.stdout and "football helmet" in table.stdout


def test_scene_over_the_cli_prints_and_draws_the_face_attributes(
    pulled_home: Path, photo_dir: Path, tmp_path: Path
) -> None:
    drawn = tmp_path / "scene.png"
    photo = str(photo_dir / "astronaut.jpg")
    out = argus(pulled_home, "ask", "scene", photo, "--draw", str(drawn))
    assert out.returncode == 0, out.stderr
    # The attributes' table and the attention table, one row each.
    assert "smiling" in out.stdout and "eyes open" in out.stdout
    assert "looks at the" in out.stdout and "camera" in out.stdout
    (doc,) = documents(argus(pulled_home, "ask", "scene", photo, "--json").stdout)
    (result,) = doc["answer"]["attributes"]["results"]
    x1, _, _, y2 = (round(v) for v in result["attributes"]["box"])
    # Under the face, the first line of words sits on a black band the photo does not have.
    band = np.asarray(Image.open(drawn).convert("RGB"))[y2 + 3 : y2 + 13, x1 + 2 : x1 + 60]
    plain = np.asarray(Image.open(photo).convert("RGB"))[y2 + 3 : y2 + 13, x1 + 2 : x1 + 60]
    assert (band.max(axis=2) == 0).mean() > 0.3 > (plain.max(axis=2) == 0).mean()


def test_describe_over_rest(server: ServerProcess, photos: dict[str, bytes]) -> None:
    url = f"{server.url}/v1/questions/describe"
    first = httpx.post(url, content=photos["astronaut"], params={"crops": "true"}, timeout=60)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["answer"]["aligned"]["count"] == 1
    png = base64.b64decode(body["answer"]["aligned"]["crops"][0]["png"])
    assert Image.open(io.BytesIO(png)).size == (112, 112)
    assert "crop_png" not in body["answer"]["faces"]["faces"][0]  # one copy of the crops
    again = httpx.post(url, content=photos["astronaut"], params={"crops": "true"}, timeout=60)
    repeat = again.json()
    assert repeat["cached"] is True and repeat["answer"] == body["answer"]
    assert repeat["timings_ms"]["total"] < body["timings_ms"]["total"]
    listed = {q["name"]: q for q in httpx.get(f"{server.url}/v1/questions").json()}
    assert listed["describe"]["models"] == ["efficientnet-lite0", "mtcnn"]
    assert listed["describe"]["steps"] == ["labels", "faces", "aligned"]


PORTRAIT = """\
    question: portrait
    description: Faces, and the colour of each
    steps:
      faces: {model: mtcnn}
      aligned: {op: align, from: faces, size: 112}
      tint: {model: tint, input: aligned, when: "faces.count > 0"}
    answer: [faces, tint]
    """


def test_user_graphs_register_validate_and_answer(
    tint_home: Path, photo_dir: Path, photos: dict[str, bytes], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PORTRAIT.replace("tint, input", "tint2, input"))
    refused = argus(tint_home, "questions", "add", str(bad))
    assert refused.returncode == 2
    assert "line 6" in refused.stderr and "'tint2', which is not registered" in refused.stderr

    server = start_server(tint_home)
    try:
        server.wait_ready()
        url = f"{server.url}/v1/questions/portrait"
        assert httpx.post(url, content=photos["astronaut"], timeout=60).status_code == 404
        good = tmp_path / "portrait.yaml"
        good.write_text(textwrap.dedent(PORTRAIT))
        added = argus(tint_home, "questions", "add", str(good), "--json")
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["result"] == "registered"
        assert (tint_home / "questions" / "portrait.yaml").read_text() == good.read_text()
        again = argus(tint_home, "questions", "add", str(good), "--json")
        assert json.loads(again.stdout)["result"] == "identical graph already registered"

        # The running server picks the new question up without a restart.
        r = httpx.post(url, content=photos["astronaut"], timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["answer"]["tint"]["count"] == 1
        r = httpx.post(url, content=photos["coffee"], timeout=60)
        assert r.json()["steps"]["tint"]["skipped"] == "when: faces.count > 0 was false"
    finally:
        server.stop()

    listed = json.loads(argus(tint_home, "questions", "list", "--json").stdout)
    portrait = next(q for q in listed if q["name"] == "portrait")
    assert portrait["kind"] == "user" and portrait["models"] == ["mtcnn", "tint"]
    assert portrait["available"] is True
    shown = argus(tint_home, "questions", "show", "portrait")
    assert shown.returncode == 0 and "faces.count > 0" in shown.stdout
    asked = argus(tint_home, "ask", "portrait", str(photo_dir / "coffee.jpg"), "--record")
    assert asked.returncode == 0, asked.stderr
    assert "tint (skipped: when: faces.count > 0 was false)" in asked.stdout
    engine = make_engine(Settings(home=tint_home).db_url)
    try:
        (record,) = find_records(engine, question="portrait")
    finally:
        engine.dispose()
    assert record["source"] == "cli" and record["answer"]["tint"] is None
    assert set(record["timings"]["steps"]) == {"faces", "aligned", "tint"}
    clash = tmp_path / "clash.yaml"
    clash.write_text(textwrap.dedent(PORTRAIT).replace("Faces,", "Other faces,"))
    refused = argus(tint_home, "questions", "add", str(clash))
    assert refused.returncode == 2 and "--replace" in refused.stderr
    assert argus(tint_home, "questions", "add", str(clash), "--replace").returncode == 0
    assert argus(tint_home, "questions", "rm", "portrait").returncode == 0
    assert not (tint_home / "questions" / "portrait.yaml").exists()
