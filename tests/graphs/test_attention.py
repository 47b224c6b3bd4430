"""The attention op: what each face looks at, on collages built from real photos (faces that
look at each other, away from each other, at the camera) and on answers built by hand for the
geometry of the ray; and the graph checks that keep the op's inputs straight."""

from __future__ import annotations

import asyncio
import io
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from argus.errors import BadInput, Conflict
from argus.generated.v1 import vision_pb2 as v1
from argus.graphs.attention import attention
from argus.graphs.parse import parse_graph
from argus.graphs.spec import ModelFacts
from argus.server import local_core
from argus.settings import Settings
from tests.asking import ask_json
from tests.conftest import serving_with_worker, wait_for_job
from tests.graphs.test_cli_rest import argus
from tests.roles import answer_of, chunks, comparable, serve, vision_stub
from tests.tasks.test_detect import candidates, yolo_onnx


def side_by_side(left: Image.Image, right: Image.Image, height: int = 600) -> bytes:
    def fit(im: Image.Image) -> Image.Image:
        return im.resize((round(im.width * height / im.height), height))

    a, b = fit(left), fit(right)
    both = Image.new("RGB", (a.width + b.width, height))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, 0))
    buf = io.BytesIO()
    both.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def ask_attention(home: Path, images: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    async def main() -> dict[str, dict[str, Any]]:
        core = local_core(Settings(home=home))
        try:
            return {k: (await ask_json(core, "attention", v))["answer"] for k, v in images.items()}
        finally:
            await core.close()

    return asyncio.run(main())


def by_x(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The attention items, left to right in the image."""
    return sorted(answer["attention"]["attention"], key=lambda item: item["box"][0])


def test_collages_of_faces_looking_at_each_other_away_and_at_the_camera(
    home_copy: Path, people_photos: dict[str, bytes]
) -> None:
    speaking = Image.open(io.BytesIO(people_photos["obama2"])).convert("RGB")  # looks left
    mirror = speaking.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # looks right
    biden = Image.open(io.BytesIO(people_photos["biden"])).convert("RGB")
    biden = biden.crop((0, 0, biden.width, biden.height // 2))  # at the camera
    answers = ask_attention(home_copy, {
        "facing": side_by_side(mirror, speaking),
        "away": side_by_side(speaking, mirror),
        "listener": side_by_side(biden, speaking),
    })
    left, right = by_x(answers["facing"])
    assert (left["gaze"], right["gaze"]) == ("right", "left")
    assert left["looking_at"]["kind"] == right["looking_at"]["kind"] == "face"
    assert left["looking_at"]["index"] == right["face"]
    assert right["looking_at"]["index"] == left["face"]
    assert [item["looking_at"] for item in by_x(answers["away"])] == [{"kind": "nothing"}] * 2
    listener, talker = by_x(answers["listener"])
    assert listener["looking_at"] == {"kind": "camera"}
    assert talker["looking_at"]["kind"] == "face"
    assert talker["looking_at"]["box"] == listener["box"]


def test_no_face_skips_attention(home_copy: Path, photos: dict[str, bytes]) -> None:
    answer = ask_attention(home_copy, {"china": photos["china"]})["china"]
    assert answer["people"] == {"people": []} and answer["faces"] == {"faces": []}
    assert answer["attributes"] is None and answer["attention"] is None


def looking(origin: list[float], direction: list[float], word: str = "right") -> dict[str, Any]:
    return {"attributes": {"gaze": {"origin": origin, "direction": direction, "word": word}}}


FACES = [("faces", {"faces": [{"box": [0, 0, 20, 20]}, {"box": [300, 0, 320, 20]}]})]


def test_the_nearest_thing_along_the_ray_wins() -> None:
    objects = [("yolo", {"objects": [
        {"box": [100, 0, 120, 20], "label": "cup", "score": 0.9},
        {"box": [0, 100, 20, 120], "label": "dog", "score": 0.9},
    ]})]
    source = {"results": [looking([10, 10], [1, 0]), looking([310, 10], [-1, 0], "left")]}
    out = attention(source, "attributes", {"faces": FACES, "objects": objects})
    first, second = out.result["attention"]
    # The cup sits between the two faces: nearest along both rays.
    assert first["looking_at"]["label"] == "cup" and first["looking_at"]["distance"] == 100
    assert second["looking_at"]["label"] == "cup"
    # Without it, each face finds the other.
    out = attention(source, "attributes", {"faces": FACES})
    assert [i["looking_at"]["index"] for i in out.result["attention"]] == [1, 0]


def test_a_ray_that_misses_by_more_than_the_cone_finds_nothing() -> None:
    # From (10, 10) to the other face's nearest corner (300, 0) is 2° above the x axis: a ray
    # 5° below still meets it within the cone, one 30° below does not.
    for degrees_down, found in ((5, "face"), (30, "nothing")):
        rad = math.radians(degrees_down)
        source = {"results": [looking([10, 10], [math.cos(rad), math.sin(rad)]),
                              looking([310, 10], [0, 1], "down")]}
        out = attention(source, "attributes", {"faces": FACES})
        assert out.result["attention"][0]["looking_at"]["kind"] == found


def test_the_lookers_own_body_is_not_a_target() -> None:
    people = [("people", {"people": [
        {"box": [0, 0, 60, 200], "face_box": [0, 0, 20, 20]},  # the looker's own body
        {"box": [280, 0, 340, 200], "face_box": [300, 0, 320, 20]},
    ]})]
    source = {"results": [looking([10, 10], [1, 0.3]), looking([310, 10], [0, 1], "down")]}
    out = attention(source, "attributes", {"faces": FACES, "people": people})
    target = out.result["attention"][0]["looking_at"]
    assert target["kind"] == "person" and target["index"] == 1


def test_the_camera_and_a_face_without_a_mesh() -> None:
    source = {"results": [looking([10, 10], [1, 0], "at the camera"), {"attributes": {}}]}
    first, second = attention(source, "attributes", {"faces": FACES}).result["attention"]
    assert first["looking_at"] == {"kind": "camera"}
    assert second["gaze"] is None and second["looking_at"]["kind"] == "unknown"
    with pytest.raises(Conflict, match="1 results for 2 faces"):
        attention({"results": source["results"][:1]}, "attributes", {"faces": FACES})


FACTS = {"mtcnn": ModelFacts("faces"), "face-mesh": ModelFacts("face-attributes"),
         "efficientnet-lite0": ModelFacts("classify"), "yolo": ModelFacts("detect")}


def graph(steps: str) -> str:
    return f"question: q\nsteps:\n{steps}"


def test_the_graph_checks_the_ops_inputs() -> None:
    ok = parse_graph(graph(
        "  faces: {model: mtcnn}\n"
        "  crops: {op: mesh_crop, from: faces, scale: 1.6}\n"
        "  attrs: {model: face-mesh, input: crops}\n"
        "  labels: {model: yolo}\n"
        "  looks: {op: attention, from: attrs, faces: faces, objects: [labels]}\n"
    ), lookup=FACTS.get)
    assert ok.steps["crops"].params == {"scale": 1.6, "size": 192}
    assert ok.steps["looks"].needs == ("attrs", "faces", "labels")
    assert ok.steps["looks"].to_dict()["objects"] == ["labels"]
    with pytest.raises(BadInput, match="op attention needs faces: STEP"):
        parse_graph(graph("  faces: {model: mtcnn}\n  c: {op: mesh_crop, from: faces}\n"
                          "  a: {model: face-mesh, input: c}\n"
                          "  l: {op: attention, from: a}\n"), lookup=FACTS.get)
    with pytest.raises(BadInput, match="op attention reads the face attributes of crops"):
        parse_graph(graph("  faces: {model: mtcnn}\n"
                          "  l: {op: attention, from: faces, faces: faces}\n"), lookup=FACTS.get)
    with pytest.raises(BadInput, match="op mesh_crop reads faces"):
        parse_graph(graph("  labels: {model: efficientnet-lite0}\n"
                          "  c: {op: mesh_crop, from: labels}\n"), lookup=FACTS.get)
    with pytest.raises(BadInput, match="objects: needs a step answering objects, but 'faces'"):
        parse_graph(graph("  faces: {model: mtcnn}\n  c: {op: mesh_crop, from: faces}\n"
                          "  a: {model: face-mesh, input: c}\n"
                          "  l: {op: attention, from: a, faces: faces, objects: [faces]}\n"),
                    lookup=FACTS.get)
    with pytest.raises(BadInput, match="reads step 'nobody'"):
        parse_graph(graph("  faces: {model: mtcnn}\n  c: {op: mesh_crop, from: faces}\n"
                          "  a: {model: face-mesh, input: c}\n"
                          "  l: {op: attention, from: a, faces: faces, people: nobody}\n"),
                    lookup=FACTS.get)
    with pytest.raises(BadInput, match=r"scale must be between 1\.0 and 4\.0"):
        parse_graph(graph("  faces: {model: mtcnn}\n  c: {op: mesh_crop, from: faces, scale: 9}\n"),
                    lookup=FACTS.get)


def only_face(answer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one face's attributes and attention item of an attention answer."""
    (result,) = answer["attributes"]["results"]
    (item,) = answer["attention"]["attention"]
    return result["attributes"], item


def test_attention_over_rest_grpc_a_job_and_ingest(
    home_copy: Path, photos: dict[str, bytes], tmp_path: Path
) -> None:
    """The same question through every way in: a real server (REST and gRPC) with a worker
    beside it for a job, then `argus ingest` over a folder."""
    astronaut = photos["astronaut"]
    with serving_with_worker(home_copy) as server:
        rest = httpx.post(f"{server.url}/v1/questions/attention", content=astronaut,
                          timeout=120).json()
        face, item = only_face(rest["answer"])
        assert face["smiling"] and item["looking_at"] == {"kind": "camera"}
        args = [str(a) for a in server.proc.args]
        channel, stub = vision_stub(f"127.0.0.1:{args[args.index('--grpc-port') + 1]}")
        with channel:
            reply: v1.Answer = stub.Ask(chunks("attention", astronaut), timeout=120)
        assert only_face(answer_of(reply)["answer"]) == (face, item)
        job = httpx.post(f"{server.url}/v1/jobs", params={"question": "attention"},
                         content=astronaut, timeout=60).json()
        done = wait_for_job(server.url, job["id"])
        assert done["status"] == "done", done
        assert only_face(done["answer"]["answer"]) == (face, item)
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    (incoming / "astronaut.jpg").write_bytes(astronaut)
    (incoming / "china.jpg").write_bytes(photos["china"])
    ran = argus(home_copy, "ingest", "--source", f"dir:{incoming}", "--question", "attention",
                "--sink", f"dir:{out}", "--once")
    assert ran.returncode == 0, ran.stderr
    stored = json.loads((out / "astronaut.jpg.json").read_text())
    assert only_face(stored["answer"]) == (face, item)
    china = json.loads((out / "china.jpg.json").read_text())
    assert china["answer"]["attention"] is None  # no face: the face steps were skipped


FACE_GRAPH = """\
question: face-gaze
steps:
  faces: {model: mtcnn}
  face_crops: {op: mesh_crop, from: faces, when: "faces.count > 0"}
  attributes: {model: face-mesh, input: face_crops}
  attention: {op: attention, from: attributes, faces: faces}
answer: [faces, attributes, attention]
"""


def test_through_a_gateway_the_crops_map_back_the_same(
    home_copy: Path, people_photos: dict[str, bytes], tmp_path: Path
) -> None:
    """The model services never see where a crop lies; the gateway's graph maps their answers
    back to the image and answers as all-in-one does."""
    graph = tmp_path / "face-gaze.yaml"
    graph.write_text(FACE_GRAPH)
    added = argus(home_copy, "questions", "add", str(graph))
    assert added.returncode == 0, added.stderr
    collage = side_by_side(
        Image.open(io.BytesIO(people_photos["obama2"])).convert("RGB").rotate(15, expand=True),
        Image.open(io.BytesIO(people_photos["biden"])).convert("RGB"),
    )
    services = [serve(home_copy, "--role", "model", "--models", name)
                for name in ("mtcnn", "face-mesh")]
    try:
        gateway = serve(home_copy, "--role", "gateway",
                        "--upstream", f"mtcnn={services[0].grpc_target}",
                        "--upstream", f"face-mesh={services[1].grpc_target}")
        services.append(gateway)
        all_in_one = serve(home_copy)
        services.append(all_in_one)
        answers = [
            httpx.post(f"{s.url}/v1/questions/face-gaze", content=collage, timeout=120).json()
            for s in (gateway, all_in_one)
        ]
    finally:
        for served in services:
            served.stop()
    assert comparable(answers[0]) == comparable(answers[1])
    faces = [r["attributes"] for r in answers[0]["answer"]["attributes"]["results"]]
    left, right = sorted((f for f in faces if "head" in f), key=lambda f: f["box"][0])
    # obama2 leans ~6° clockwise, turned 15° counter-clockwise here; biden leans ~11°.
    assert left["head"]["roll"] == pytest.approx(6 - 15, abs=5)
    assert right["head"]["roll"] == pytest.approx(11, abs=5)


THINGS_GRAPH = """\
question: looking-at-things
steps:
  faces: {model: mtcnn}
  things: {model: yolo}
  face_crops: {op: mesh_crop, from: faces, when: "faces.count > 0"}
  attributes: {model: face-mesh, input: face_crops}
  attention: {op: attention, from: attributes, faces: faces, objects: [things]}
answer: [faces, things, attention]
"""


def test_an_object_between_two_faces_is_what_the_talker_looks_at(
    home_copy: Path, people_photos: dict[str, bytes], tmp_path: Path
) -> None:
    """biden (at the camera) beside obama2 (looking left at him), with a detector of the
    user's that answers one 'cup' between them: the cup is nearer along obama2's gaze."""
    speaking = Image.open(io.BytesIO(people_photos["obama2"])).convert("RGB")
    biden = Image.open(io.BytesIO(people_photos["biden"])).convert("RGB")
    collage = side_by_side(biden.crop((0, 0, biden.width, biden.height // 2)), speaking)
    # 841x600 letterboxed into the model's 64x64: scale 64/841, 9 px of padding on top; the
    # cup is around image (505, 190), 110x140.
    k = 64 / 841
    block = candidates(1, (505 * k, 190 * k + 9, 110 * k, 140 * k, 0, 0.9))
    model = yolo_onnx(tmp_path / "yolo.onnx", block, metadata={"names": "{0: 'cup'}"})
    graph = tmp_path / "looking-at-things.yaml"
    graph.write_text(THINGS_GRAPH)

    async def main() -> dict[str, Any]:
        core = local_core(Settings(home=home_copy))
        try:
            work = tmp_path / "yolo"
            work.mkdir()
            (work / "model.onnx").write_bytes(model.read_bytes())
            core.registry.register("yolo", work, {"task": "detect", "model": "model.onnx",
                                                  "license": "MIT", "source": {"kind": "test"}})
            core.catalogue.add(graph)
            return (await ask_json(core, "looking-at-things", collage))["answer"]
        finally:
            await core.close()

    answer = asyncio.run(main())
    (cup,) = answer["things"]["objects"]
    assert cup["label"] == "cup" and 440 < cup["box"][0] < 470
    listener, talker = by_x(answer)
    assert listener["looking_at"] == {"kind": "camera"}
    target = talker["looking_at"]
    assert (target["kind"], target["label"], target["step"]) == ("object", "cup", "things")
    assert target["box"] == cup["box"]
