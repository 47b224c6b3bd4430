"""Fine-tuning (torch) end to end, kept tiny: three digits, ten scans each, one epoch at 64px."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from argus.images import Limits, decode
from argus.tasks import load_task_model
from argus.train import data as photos
from argus.train.run import TrainRequest, train
from tests.train.conftest import open_registry


def test_a_fine_tuned_network_is_exported_checked_and_served(
    train_home: Path, digits: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    req = TrainRequest("digits", photos.from_folder(digits), mode="finetune", epochs=1,
                       image_size=64, val=0.3)
    result = train(registry, registry.store, tmp_path / "cache", req)
    report = result.report
    assert report["mode"] == "finetune"
    assert set(report["alternatives"]) == {"head", "finetune"}
    check = report["export_check"]
    assert check["top1_agreement"] == 1.0 and check["max_abs_logit_diff"] < 1e-2
    curves = report["lineage"]["hyperparameters"]
    assert curves["epochs"] == 1 and curves["image_size"] == 64
    package = registry.store.load(result.version.digest)
    assert package.manifest.inputs[0].shape == (-1, 3, 64, 64)
    assert [o.name for o in package.manifest.outputs] == ["logits", "features"]
    # the served model gives the scores the report was made from
    model = load_task_model(package, 1)
    held = [p for p, _ in photos.from_folder(digits)][:3]
    rows = [model.prepare(decode(p.read_bytes(), Limits(), model.min_side), {}) for p in held]
    probs = np.stack(model.infer(rows))
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model.close()


def test_auto_keeps_the_head_when_it_is_already_good_enough(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    result = train(registry, registry.store, tmp_path / "cache",
                   TrainRequest("cc", photos.from_folder(coffee_or_cat)))
    assert result.report["mode"] == "head"
    assert "already scores 100.0%" in result.report["mode_reason"]
    assert set(result.report["alternatives"]) == {"head"}
