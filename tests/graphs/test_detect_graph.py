"""A detector in a graph: `objects.count` and labels in `when:`, `crop` by its boxes, and a
classifier on the crops — with a YOLO-layout model built here whose outputs are known."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from argus.server import local_core
from argus.settings import Settings
from tests.asking import ask_json
from tests.graphs.conftest import register_classifier
from tests.tasks.test_detect import candidates, image_bytes, yolo_onnx

PEOPLE = """\
    question: crowd
    steps:
      objects: {model: yolo}
      people: {op: threshold, from: objects, min_score: 0.5}
      crops: {op: crop, from: people, size: 16}
      tint:
        model: tint
        input: crops
        when: "any objects.label in ['person'] and people.count >= 2"
    answer: [objects, crops, tint]
    """


def test_a_detector_gates_and_feeds_crops(tmp_path: Path) -> None:
    # Scores scale with the image's mean value: a white image has all three objects, a black
    # one none.
    block = candidates(
        2, (20, 20, 10, 10, 0, 0.9), (44, 44, 12, 12, 0, 0.8), (40, 12, 8, 8, 1, 0.4)
    )
    meta = {"names": "{0: 'person', 1: 'bicycle'}"}
    model = yolo_onnx(tmp_path / "yolo.onnx", block, metadata=meta, scores_times_mean=True)
    home = tmp_path / "home"

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        core = local_core(Settings(home=home))
        try:
            work = Path(tempfile.mkdtemp(prefix="argus-yolo-"))
            shutil.copy(model, work / "model.onnx")
            fields = {"task": "detect", "model": "model.onnx", "license": "MIT",
                      "source": {"kind": "test"}}
            core.registry.register("yolo", work, fields)
            shutil.rmtree(work)
            register_classifier(core.registry, "tint")
            graph = tmp_path / "crowd.yaml"
            graph.write_text(textwrap.dedent(PEOPLE))
            core.catalogue.add(graph)
            white = await ask_json(core, "crowd", image_bytes(64, 64, (255, 255, 255)))
            black = await ask_json(core, "crowd", image_bytes(64, 64, (0, 0, 0)))
            return white, black
        finally:
            await core.close()

    white, black = asyncio.run(main())
    objects = white["answer"]["objects"]["objects"]
    assert [(o["label"], o["score"]) for o in objects] == [
        ("person", 0.9), ("person", 0.8), ("bicycle", 0.4)
    ]
    crops = white["answer"]["crops"]
    assert crops["count"] == 2 and crops["boxes"] == [[15, 15, 25, 25], [38, 38, 50, 50]]
    assert white["steps"]["tint"]["skipped"] is None
    assert white["answer"]["tint"]["count"] == 2
    assert {m["name"] for m in white["models"]} == {"yolo", "tint"}

    assert black["answer"]["objects"] == {"objects": []}
    assert black["answer"]["crops"] == {"count": 0, "boxes": [], "size": 16}
    gate = "any objects.label in ['person'] and people.count >= 2"
    assert black["steps"]["tint"]["skipped"] == f"when: {gate} was false"
    assert black["answer"]["tint"] is None
