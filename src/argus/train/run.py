"""``argus train``: photos in, a registered and evaluated model version out.

Read and check the photos, split them, embed them with the base's ``features`` output (cached),
fit a softmax head; fine-tune the whole network when asked, or in ``auto`` mode when torch is
installed and the head leaves room; export the better of the two as an ordinary package with
its report and lineage; register it; then (when asked) promote it only if it beats the current
production version on the same held-out photos, or start a canary.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

import argus
from argus.errors import BadInput
from argus.manifest import ModelPackage, Preprocess
from argus.models.packages import PackageStore
from argus.models.registry import PRODUCTION, ModelRegistry, VersionInfo
from argus.models.versions import check_name, parse_ref
from argus.tasks.image_input import ImageFields
from argus.train import MODES
from argus.train import data as photos
from argus.train import head as heads
from argus.train.evaluate import evaluate
from argus.train.export import package_fields, write_extras, write_onnx
from argus.train.features import embed, features_width, preprocess_photo
from argus.train.report import confusion_png, curves_png, score

GOOD_ENOUGH = 0.99
"""In auto mode, a head this accurate on held-out photos is kept without fine-tuning."""
EPOCHS = 4

Progress = Callable[[str, int, int], None]
"""(stage, done, total)."""
Say = Callable[[str], None]


@dataclass
class TrainRequest:
    name: str
    items: list[tuple[Path, str]]
    """(photo, label) pairs: :func:`argus.train.data.from_folder` or ``from_csv``."""
    base: str = "efficientnet-lite0"
    """NAME, NAME:VERSION or NAME@ALIAS of a classifier with a ``features`` output."""
    val: float = 0.2
    val_items: list[tuple[Path, str]] | None = None
    mode: str = "auto"
    epochs: int = EPOCHS
    image_size: int | None = None
    seed: int = 0
    promote_if_better: bool = False
    canary: int | None = None
    actor: str = "argus train"
    threads: int = 0


@dataclass
class TrainResult:
    version: VersionInfo
    created: bool
    report: dict[str, Any]
    pictures: dict[str, bytes] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None


def resolve(registry: ModelRegistry, store: PackageStore, ref: str) -> tuple[VersionInfo,
                                                                              ModelPackage]:
    name, version, alias = parse_ref(ref)
    info = registry.resolve(name, version=version, alias=alias)
    return info, store.load(info.digest)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def choose_image_size(examples: list[photos.Example], requested: int | None) -> int:
    """The fine-tuning input side: as asked, else from the photos (no point upscaling 8x8
    digits to 224): the median shorter side rounded up to a multiple of 32, within 96..224."""
    if requested is not None:
        if requested % 32 or not 64 <= requested <= 512:
            raise BadInput(f"--image-size must be a multiple of 32 from 64 to 512, not {requested}")
        return requested
    from PIL import Image

    sides = []
    for e in examples[:200]:
        with Image.open(e.path) as img:
            sides.append(min(img.size))
    side = int(np.median(sides))
    return int(min(224, max(96, -(-side // 32) * 32)))


def tensors_at(examples: list[photos.Example], pre: Preprocess) -> np.ndarray:
    return np.stack([preprocess_photo(e, pre) for e in examples])


def train(
    registry: ModelRegistry,
    store: PackageStore,
    cache_dir: Path,
    req: TrainRequest,
    progress: Progress = lambda _s, _d, _t: None,
    say: Say = lambda _m: None,
) -> TrainResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    check_name("model", req.name)
    if req.mode not in MODES:
        raise BadInput(f"--mode must be one of {', '.join(MODES)}, not {req.mode!r}")
    if req.mode == "finetune" and not torch_available():
        raise BadInput("--mode finetune needs torch: pip install 'argus-vision[train]'")
    base_info, base = resolve(registry, store, req.base)

    def stage(name: str) -> Callable[[int, int], None]:
        return lambda done, total: progress(name, done, total)

    dataset = photos.read(req.items, progress=stage("reading photos"))
    for warning in dataset.checks.warnings:
        say(f"warning: {warning}")
    if req.val_items is not None:
        held_set = photos.read(req.val_items, progress=stage("reading held-out photos"))
        train_ex = dataset.examples
        held_ex = photos.drop_leaked(train_ex, held_set)
        dataset.checks.leaked = held_set.checks.leaked
        split: dict[str, Any] = {"held_out_from": "--val-data", "held_out_digest": held_set.digest}
    else:
        train_ex, held_ex = photos.split(dataset, req.val, req.seed)
        split = {"val": req.val, "seed": req.seed}
    classes = dataset.classes
    missing = sorted({e.label for e in held_ex} - set(classes))
    if missing:
        raise BadInput(f"held-out classes not in the training photos: {', '.join(missing)}")
    index = {c: i for i, c in enumerate(classes)}
    y_train = np.array([index[e.label] for e in train_ex])
    y_held = np.array([index[e.label] for e in held_ex])
    held_paths = [str(e.path) for e in held_ex]
    timings["read"] = time.perf_counter() - started

    t = time.perf_counter()
    f_train, fresh_train = embed(train_ex, base, cache_dir, req.threads, stage("embedding"))
    f_held, fresh_held = embed(held_ex, base, cache_dir, req.threads, stage("embedding held-out"))
    timings["embed"] = time.perf_counter() - t
    t = time.perf_counter()
    head, losses = heads.fit(f_train, y_train, len(classes), progress=stage("fitting the head"))
    head_probs = heads.softmax(head.logits(f_held))
    head_report = score(head_probs, y_held.tolist(), classes, held_paths)
    timings["head"] = time.perf_counter() - t
    say(f"head on frozen features: held-out accuracy {head_report['accuracy']:.2%}")

    mode, reason = _choose_mode(req.mode, head_report["accuracy"])
    say(f"mode: {mode} ({reason})")
    w, b = head.folded()
    pre_block = base.fields_as(ImageFields).preprocess.model_dump()
    curves: dict[str, list[float]] = {"head loss": losses}
    alternatives = {"head": _summary(head_report)}
    chosen, chosen_report = "head", head_report
    tensors: dict[str, np.ndarray] = {}
    image_size: int | None = None
    export_check: dict[str, Any] | None = None
    hyper: dict[str, Any] = {"head": {"steps": heads.STEPS, "l2": heads.L2,
                                      "learning_rate": heads.LEARNING_RATE}}
    if mode == "finetune":
        t = time.perf_counter()
        tuned, image_size, tuned_pre = _finetune(req, base, train_ex, held_ex, y_train, y_held,
                                                 pre_block, progress, len(classes))
        timings["finetune"] = time.perf_counter() - t
        tuned_probs = heads.softmax(tuned.held_logits)
        tuned_report = score(tuned_probs, y_held.tolist(), classes, held_paths)
        alternatives["finetune"] = _summary(tuned_report)
        curves.update({f"fine-tune {k}": v for k, v in tuned.curves.items()})
        hyper["finetune"] = {"epochs": req.epochs, "image_size": image_size, "batch": 32,
                             "optimizer": "AdamW", "learning_rate": 1e-3, "schedule": "one-cycle",
                             "weight_decay": 1e-2, "batchnorm": "statistics frozen",
                             "augment": "shifts up to 1/16 of the side"}
        say(f"fine-tuned: held-out accuracy {tuned_report['accuracy']:.2%}")
        if req.mode == "finetune" or _better(tuned_report, head_report):
            chosen, chosen_report = "finetune", tuned_report
            tensors, w, b, pre_block = tuned.tensors, tuned.head_weight, tuned.head_bias, tuned_pre
            reason += "; kept the fine-tuned network" if req.mode == "auto" else ""
        else:
            image_size = None
            reason += "; the head alone scored as well, kept it (smaller change)"

    source = {
        "kind": "trained",
        "base": {"name": base_info.name, "version": base_info.number, "digest": base.digest},
        "dataset": {"digest": dataset.digest, "images": len(dataset.examples),
                    "classes": dataset.counts()},
        "split": {**split, "train": len(train_ex), "held_out": len(held_ex)},
        "mode": chosen,
        "hyperparameters": hyper.get(chosen, {}),
        "metrics": _summary(chosen_report),
        "seed": req.seed,
        "code_version": argus.__version__,
    }
    timings["total"] = time.perf_counter() - started
    report: dict[str, Any] = {
        "model": req.name,
        "mode": chosen,
        "mode_reason": reason,
        "alternatives": alternatives,
        "held_out": chosen_report,
        "checks": dataset.checks.to_json(),
        "embedded": {"computed": fresh_train + fresh_held,
                     "cached": len(train_ex) + len(held_ex) - fresh_train - fresh_held},
        "lineage": source,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    if mode == "finetune":
        report["seconds"]["finetune_epochs"] = tuned.epoch_seconds
    pictures = {
        "confusion.png": confusion_png(chosen_report["confusion"], classes),
        "curves.png": curves_png(curves, f"{req.name}: training ({chosen})"),
    }
    work = Path(tempfile.mkdtemp(prefix="argus-train-"))
    try:
        write_onnx(base, work / "model.onnx", w, b, tensors, image_size)
        if chosen == "finetune":
            export_check = _check_export(work / "model.onnx", req, held_ex, pre_block,
                                         tuned.held_logits)
            report["export_check"] = export_check
        write_extras(work, classes, report, pictures)
        fields = package_fields(
            base, classes, pre_block, source,
            f"{req.name}: {len(classes)} classes trained from {len(dataset.examples)} photos "
            f"on {base_info.name}:{base_info.number} ({chosen})",
        )
        registered = registry.register(
            req.name, work, fields, actor=req.actor, training_data_digest=dataset.digest,
            metrics=_summary(chosen_report),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = TrainResult(registered.version, registered.created, report, pictures)
    if req.promote_if_better:
        result.promotion = promote_if_better(registry, store, registered.version, held_ex,
                                             chosen_report, req, say)
    if req.canary is not None:
        registry.canary(req.name, registered.version.number, req.canary, actor=req.actor)
        say(f"canary: {req.canary}% of {req.name} now goes to version "
            f"{registered.version.number}")
    return result


def _finetune(
    req: TrainRequest,
    base: ModelPackage,
    train_ex: list[photos.Example],
    held_ex: list[photos.Example],
    y_train: np.ndarray,
    y_held: np.ndarray,
    pre_block: dict[str, Any],
    progress: Progress,
    classes: int,
) -> tuple[Any, int, dict[str, Any]]:
    from argus.train.finetune import finetune

    size = choose_image_size(train_ex, req.image_size)
    tuned_pre = {**pre_block, "resize_shorter": size, "crop": size}
    pre = Preprocess(**tuned_pre)
    x_train = tensors_at(train_ex, pre)
    x_held = tensors_at(held_ex, pre)
    tuned = finetune(
        onnx.load(str(base.onnx_files()["model"])), x_train, y_train, x_held, y_held,
        classes, features_width(base), req.epochs, req.seed, req.threads,
        progress=lambda step, steps, what: progress(f"fine-tuning ({what})", step, steps),
    )
    return tuned, size, tuned_pre


def _check_export(path: Path, req: TrainRequest, held_ex: list[photos.Example],
                  pre_block: dict[str, Any], torch_logits: np.ndarray) -> dict[str, Any]:
    """The exported graph under ONNX Runtime against torch on the held-out photos."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = tensors_at(held_ex, Preprocess(**pre_block))
    logits = np.concatenate(
        [sess.run([sess.get_outputs()[0].name], {sess.get_inputs()[0].name: x[i : i + 32]})[0]
         for i in range(0, len(x), 32)]
    )
    diff = float(np.abs(logits - torch_logits).max())
    relative = diff / max(1.0, float(np.abs(torch_logits).max()))
    agree = float(np.mean(logits.argmax(1) == torch_logits.argmax(1)))
    if agree < 1.0 or relative > 1e-4:
        raise BadInput(f"the exported model differs from the trained one (max |diff| {diff:.3g}, "
                       f"top-1 agreement {agree:.1%}); not registered")
    return {"max_abs_logit_diff": round(diff, 6), "top1_agreement": agree,
            "images": len(held_ex), "against": "torch, the trained network"}


def _choose_mode(requested: str, head_accuracy: float) -> tuple[str, str]:
    if requested != "auto":
        return requested, f"--mode {requested}"
    if not torch_available():
        return "head", "torch is not installed (pip install 'argus-vision[train]' to fine-tune)"
    if head_accuracy >= GOOD_ENOUGH:
        return "head", f"the head on frozen features already scores {head_accuracy:.1%}"
    return "finetune", f"the head scores {head_accuracy:.1%}; trying to fine-tune the network"


def _better(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["accuracy"], a["macro_f1"]) > (b["accuracy"], b["macro_f1"])


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "images": report["images"], "threshold": report["threshold"].get("value")}


def promote_if_better(
    registry: ModelRegistry,
    store: PackageStore,
    new: VersionInfo,
    held_ex: list[photos.Example],
    new_report: dict[str, Any],
    req: TrainRequest,
    say: Say,
) -> dict[str, Any]:
    """Promote ``new`` to production when it beats the current production version on the
    same held-out photos (or when there is none); both scores go in the audit event."""
    detail: dict[str, Any] = {"new": {"version": new.number, **_summary(new_report)},
                              "held_out_images": len(held_ex)}
    current = registry.show(req.name).aliases.get(PRODUCTION)
    if current is not None and current == new.number:
        return {"promoted": False, "why": "this version is production already", **detail}
    if current is not None:
        old = registry.resolve(req.name, version=current)
        try:
            old_report = evaluate(store.load(old.digest), held_ex, req.threads)
        except BadInput as exc:
            return {"promoted": False, "why": f"production cannot be scored on these photos: "
                    f"{exc}", **detail}
        detail["production"] = {"version": current, **_summary(old_report)}
        if not _better(new_report, old_report):
            say(f"not promoted: production (version {current}) scores "
                f"{old_report['accuracy']:.2%}, this one {new_report['accuracy']:.2%}")
            return {"promoted": False, "why": "does not beat production", **detail}
        detail["why"] = "beats production on the same held-out photos"
    else:
        detail["why"] = "no production version to compare with"
    registry.promote(req.name, new.number, actor=req.actor, detail=detail)
    say(f"promoted version {new.number} to production ({detail['why']})")
    return {"promoted": True, **detail}
