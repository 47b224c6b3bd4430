"""ppocr-int8: the recogniser's backbone quantized at pull time, checked against the float one,
and read on images none of its calibration lines came from."""

from __future__ import annotations

import collections
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from argus.convert import ppocr, ppocr_int8
from argus.images import Limits, decode
from argus.models.packages import PackageStore
from argus.models.pull import DEFAULT_MODELS, build_cached
from argus.tasks import load_task_model
from argus.tasks.text import TextModel
from argus.tasks.textrec import BEST_PROBABILITY
from tests.convert.conftest import CACHE_DIR
from tests.rendered_text import PAGE_TEXT, cer, samples


def package(tmp: Path, name: str) -> TextModel:
    (model,) = [m for m in DEFAULT_MODELS if m.name == name]
    built = build_cached(model, CACHE_DIR, lambda _m: None)
    fields = json.loads((built / "fields.json").read_text())
    src = tmp / f"{name}-src"
    shutil.copytree(built, src, ignore=shutil.ignore_patterns("fields.json"))
    loaded = load_task_model(PackageStore(tmp / name).add(src, fields), threads=2)
    assert isinstance(loaded, TextModel)
    return loaded


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextModel, TextModel]:
    tmp = tmp_path_factory.mktemp("ppocr-int8")
    return package(tmp, ppocr.NAME), package(tmp, ppocr_int8.NAME)


def read(model: TextModel, data: bytes) -> str:
    image = decode(data, Limits(), model.decode_size)
    (raw,) = model.infer([model.prepare(image, {})])
    text: str = model.finish(raw, image, {})["text"]
    return text


def page_png() -> bytes:
    skimage_data = pytest.importorskip("skimage.data")
    buf = io.BytesIO()
    Image.fromarray(np.stack([skimage_data.page()] * 3, axis=-1)).save(buf, format="PNG")
    return buf.getvalue()


def test_is_pulled_only_when_named() -> None:
    (model,) = [m for m in DEFAULT_MODELS if m.name == ppocr_int8.NAME]
    assert model.opt_in
    assert [m.name for m in DEFAULT_MODELS if m.opt_in] == [ppocr_int8.NAME]


def test_only_the_recognisers_backbone_is_int8(models: tuple[TextModel, TextModel]) -> None:
    import onnx

    _, int8 = models
    files = int8.package.onnx_files()
    ops = collections.Counter(n.op_type for n in onnx.load(str(files["recogniser"])).graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > ops["QuantizeLinear"]
    # The CTC head's MatMul and Softmax stay float: no quantized Softmax output, and the
    # best class of each column is taken from the float probabilities.
    nodes = list(onnx.load(str(files["recogniser"])).graph.node)
    producer = {out: n for n in nodes for out in n.output}
    topk = producer[producer[BEST_PROBABILITY].input[0]]
    assert topk.op_type == "TopK" and producer[topk.input[0]].op_type == "Softmax"
    for role in ("detector", "orientation"):
        ops = collections.Counter(n.op_type for n in onnx.load(str(files[role])).graph.node)
        assert ops["QuantizeLinear"] == 0
    quant: dict[str, Any] = int8.package.manifest.source.record()["quantization"]
    assert quant["held_out_different_characters"] <= ppocr_int8.MAX_DIFFERENT
    assert int8.characters == models[0].characters


def test_reads_as_well_as_the_float_package(models: tuple[TextModel, TextModel]) -> None:
    """On scikit-image's page and rendered text with DejaVu fonts (the calibration lines are
    Pillow's own font), the int8 recogniser's character error rate is the float one's, within
    one character in a hundred."""
    fp32, int8 = models
    cases = [(page_png(), PAGE_TEXT)] + [(s.jpeg, s.text) for s in samples(8, seed=41)]
    for data, truth in cases:
        assert cer(read(int8, data), truth) <= cer(read(fp32, data), truth) + 0.01


def test_edits() -> None:
    assert ppocr_int8.edits("exit", "exit") == 0
    assert ppocr_int8.edits("7:30 exit", "7:30exit") == 1
    assert ppocr_int8.edits("kitten", "sitting") == 3
    assert ppocr_int8.edits("", "abc") == 3


def test_a_calibration_line_is_a_48_pixel_high_rgb_line() -> None:
    import random

    lines = [ppocr_int8.rendered_line(random.Random(i)) for i in range(4)]
    assert all(line.shape[0] == 48 and line.shape[2] == 3 and line.dtype == np.uint8
               for line in lines)
    tiles = ppocr_int8.tiles(lines)
    assert all(t.shape == (1, 3, 48, ppocr_int8.TILE) for t in tiles)
    assert len(tiles) == sum(-(-line.shape[1] // ppocr_int8.TILE) for line in lines)
