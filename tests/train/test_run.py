"""Training end to end on real photos with the pulled EfficientNet-Lite0 (head mode: numpy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import skimage.data

from argus.errors import BadInput
from argus.images import Limits, decode
from argus.models.registry import PRODUCTION
from argus.tasks import load_task_model
from argus.train import data as photos
from argus.train.run import TrainRequest, train
from tests.train.conftest import open_registry, write_coffee_or_cat


def _swapped(src: Path, dest: Path) -> Path:
    """The same photos with the two class folders' names exchanged: a badly labelled set."""
    shutil.copytree(src / "coffee", dest / "cat")
    shutil.copytree(src / "cat", dest / "coffee")
    return dest


def test_a_head_trained_version_is_registered_with_its_report_and_lineage(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    req = TrainRequest("coffee-or-cat", photos.from_folder(coffee_or_cat), mode="head", val=0.25)
    result = train(registry, registry.store, tmp_path / "cache", req)
    version = result.version
    assert result.created and version.number == 1 and version.task == "classify"
    report = result.report
    assert report["mode"] == "head" and report["mode_reason"] == "--mode head"
    assert report["held_out"]["accuracy"] == 1.0
    assert report["held_out"]["images"] == 4
    assert report["embedded"] == {"computed": 16, "cached": 0}

    package = registry.store.load(version.digest)
    assert package.labels == ["cat", "coffee"]
    assert {"model.onnx", "labels.txt", "report.json", "confusion.png", "curves.png"} <= set(
        package.manifest.files
    )
    assert [o.name for o in package.manifest.outputs] == ["logits", "features"]
    dataset = photos.read(photos.from_folder(coffee_or_cat))
    base = registry.resolve("efficientnet-lite0")
    lineage = version.source
    assert lineage["kind"] == "trained"
    assert lineage["base"] == {"name": "efficientnet-lite0", "version": base.number,
                               "digest": base.digest}
    assert lineage["dataset"]["digest"] == dataset.digest
    assert lineage["split"] == {"val": 0.25, "seed": 0, "train": 12, "held_out": 4}
    assert lineage["mode"] == "head" and lineage["seed"] == 0 and lineage["code_version"]
    assert version.training_data_digest == dataset.digest
    assert version.metrics["accuracy"] == 1.0

    # A photo the model never saw (the whole cat, not a crop) is answered by the new version.
    model = load_task_model(package, 1)
    image = decode((Path(skimage.data.__file__).parent / "chelsea.png").read_bytes(), Limits(),
                   model.min_side)
    answer = model.finish(model.infer([model.prepare(image, {})])[0], image, {"top_k": 2})
    assert answer["labels"][0]["label"] == "cat"
    model.close()


def test_retraining_with_more_photos_embeds_only_the_new_ones(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    cache = tmp_path / "cache"
    data = tmp_path / "data"
    shutil.copytree(coffee_or_cat, data)
    train(registry, registry.store, cache, TrainRequest("cc", photos.from_folder(data),
                                                        mode="head"))
    write_coffee_or_cat(data, 2, seed=7)
    again = train(registry, registry.store, cache, TrainRequest("cc", photos.from_folder(data),
                                                                mode="head"))
    assert again.report["embedded"] == {"computed": 4, "cached": 16}
    assert again.version.number == 2


def test_promote_if_better_compares_with_production_on_the_same_held_out_photos(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    cache = tmp_path / "cache"
    held = photos.from_folder(write_coffee_or_cat(tmp_path / "held", 3, seed=5))
    bad = photos.from_folder(_swapped(coffee_or_cat, tmp_path / "swapped"))
    good = photos.from_folder(coffee_or_cat)

    def run(items: list[tuple[Path, str]]) -> dict:
        req = TrainRequest("cc", items, mode="head", val_items=held, promote_if_better=True)
        result = train(registry, registry.store, cache, req)
        assert result.promotion is not None
        return result.promotion

    first = run(bad)  # nothing to compare with: promoted, however poor
    assert first["promoted"] and first["why"] == "no production version to compare with"
    assert first["new"]["accuracy"] == 0.0
    second = run(good)
    assert second["promoted"] and second["production"]["version"] == 1
    assert second["production"]["accuracy"] == 0.0 and second["new"]["accuracy"] == 1.0
    third = run(bad)
    assert not third["promoted"] and third["why"] == "does not beat production"
    assert registry.show("cc").aliases[PRODUCTION] == 2
    promotions = [e for e in registry.history("cc") if e["action"] == "promote"]
    assert [e["to_version"] for e in promotions] == [1, 2]
    assert promotions[1]["detail"]["production"]["accuracy"] == 0.0
    assert promotions[1]["detail"]["new"]["accuracy"] == 1.0
    assert promotions[1]["detail"]["held_out_images"] == 6


def test_a_canary_share_is_started_when_asked(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    req = TrainRequest("cc", photos.from_folder(coffee_or_cat), mode="head", canary=10)
    result = train(registry, registry.store, tmp_path / "cache", req)
    info = registry.show("cc")
    assert info.canary_percent == 10 and info.aliases["canary"] == result.version.number


def test_a_base_without_a_features_output_is_refused(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    registry, _ = open_registry(train_home)
    req = TrainRequest("cc", photos.from_folder(coffee_or_cat), base="mtcnn", mode="head")
    with pytest.raises(BadInput, match="no 'features' output"):
        train(registry, registry.store, tmp_path / "cache", req)
    with pytest.raises(BadInput, match="--mode must be one of"):
        train(registry, registry.store, tmp_path / "cache",
              TrainRequest("cc", photos.from_folder(coffee_or_cat), mode="fast"))


def test_labelled_review_images_are_trained_on_and_only_they_are_embedded(
    train_home: Path, coffee_or_cat: Path, tmp_path: Path
) -> None:
    """The data loop: kept images labelled in review land in the model's dataset folder, and
    the next training reads them there, embedding only them."""
    import hashlib

    from argus.review.store import Keep, ReviewStore
    from tests.train.conftest import crops

    registry, settings = open_registry(train_home)
    cache = tmp_path / "cache"
    folder = settings.dataset_dir("cc")
    shutil.copytree(coffee_or_cat, folder)
    first = train(registry, registry.store, cache,
                  TrainRequest("cc", photos.from_folder(folder), mode="head"))
    assert first.report["embedded"]["computed"] == 16

    store = ReviewStore(registry.engine, settings.home / "review", 10**8, settings.dataset_dir)
    for label, rgb in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
        data = crops(rgb, 1, seed=11)[0]
        digest = hashlib.sha256(data).hexdigest()
        assert store.keep(Keep(digest, data, "jpg", "cc", 1, "cc", "cat", 0.55, "uncertain"))
        store.label(digest, label)
        assert (folder / label / f"{digest}.jpg").read_bytes() == data

    second = train(registry, registry.store, cache,
                   TrainRequest("cc", photos.from_folder(folder), mode="head"))
    assert second.report["embedded"] == {"computed": 2, "cached": 16}
    assert second.version.source["dataset"]["images"] == 18
