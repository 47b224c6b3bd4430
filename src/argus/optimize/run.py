"""``argus models optimize``: a parent version in, a faster version of it registered beside it.

Read the calibration photos and the held-out images through the parent's own preprocessing;
make the new ONNX file (int8: ONNX Runtime static quantization) or runtime hints (bf16: OpenVINO);
answer every held-out image with both and compare; register the result as an ordinary package
with its report and lineage (parent digest, method, calibration data digest, agreement); then,
only when asked and only on that evidence, promote it or start a canary.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import argus
from argus.engines import RuntimeChoice
from argus.errors import BadInput
from argus.manifest import ModelPackage
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry, VersionInfo
from argus.optimize import TARGETS, images
from argus.optimize.agreement import Comparison, answers, comparison_for
from argus.optimize.quantize import quantize_int8
from argus.tasks import load_task_model
from argus.tasks.base import TaskModel
from argus.train.run import resolve

Progress = Callable[[str, int, int], None]
Say = Callable[[str], None]
OPTIMIZED = "optimized"
"""``source.kind`` of a version this module made."""
LEFT_BEHIND = ("report.json",)
"""Parent files that describe the parent, not the new version (and its report's pictures)."""
SPEED_RUNS = 30


@dataclass
class OptimizeRequest:
    ref: str
    """NAME, NAME:VERSION or NAME@ALIAS of the parent."""
    to: str = "int8"
    calibrate: Path | None = None
    held_out: Path | None = None
    """Compare on these images instead of the bundled photos' variants."""
    promote_if_agrees: float | None = None
    canary: int | None = None
    actor: str = "argus models optimize"
    threads: int = 1


@dataclass
class OptimizeResult:
    version: VersionInfo
    created: bool
    report: dict[str, Any]
    promotion: dict[str, Any] | None = None


def check(req: OptimizeRequest) -> None:
    """Every refusal that needs no model, before any work is done."""
    if req.to not in TARGETS:
        raise BadInput(f"--to must be one of {', '.join(TARGETS)}, not {req.to!r}")
    if req.to == "int8" and req.calibrate is None:
        raise BadInput("--to int8 needs --calibrate DIR: photos like those the model will see")
    if req.to == "bf16" and importlib.util.find_spec("openvino") is None:
        raise BadInput("--to bf16 runs on OpenVINO: pip install 'argus-vision[openvino]'")
    if req.canary is not None and not 1 <= req.canary <= 100:
        raise BadInput(f"--canary must be a share of traffic from 1 to 100 (%), not {req.canary}")
    gate = req.promote_if_agrees
    if gate is not None and not 0 < gate <= 1:
        raise BadInput(f"--promote-if-agrees must be above 0 and at most 1 (0.99 is 99%), "
                       f"not {gate}")


def _refuse_unless_quantizable(info: VersionInfo, parent: ModelPackage) -> None:
    if info.source.get("kind") == OPTIMIZED:
        made_from = info.source.get("parent") or {}
        raise BadInput(f"{info.name}:{info.number} was itself made by optimize (from "
                       f"{made_from.get('name')}:{made_from.get('version')}); optimize the "
                       "parent instead")
    if len(parent.onnx_files()) != 1 or len(parent.manifest.inputs) > 1:
        raise BadInput(f"{info.name} is a {parent.task} package of several networks or inputs "
                       "run in stages; optimize works on one-network, one-image-input packages "
                       "(classify, embed, detect)")


def _copy_parent(parent: ModelPackage, work: Path) -> None:
    for rel in parent.manifest.files:
        if rel in LEFT_BEHIND or rel.endswith(".png"):
            continue
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(parent.path / rel, work / rel)


def _fields(parent: ModelPackage, to: str, source: dict[str, Any],
            agreement: dict[str, Any] | None, info: VersionInfo) -> dict[str, Any]:
    """The parent's manifest with this version's description, lineage and runtime hints."""
    fields = {k: v for k, v in parent.raw.items() if k not in ("files", "name")}
    runtime = {k: v for k, v in dict(fields.get("runtime") or {}).items()
               if k not in ("engine", "precision", "bf16_checked", "bf16_not_checked")}
    if to == "int8":
        # The evidence is ONNX Runtime's; a bf16 check made for the float graph does not hold.
        runtime["engine"] = "onnxruntime"
        how = "int8 (ONNX Runtime static quantization, QDQ)"
    else:
        runtime.update(engine="openvino", precision="bf16")
        if agreement is not None:
            runtime["bf16_checked"] = {
                "images": agreement["images"], "top1_agreement": agreement["agreement"],
                "photos": "held-out images of argus models optimize (see report.json)"}
        how = "bf16 on OpenVINO"
    fields["runtime"] = runtime
    fields["source"] = source
    fields["description"] = f"{parent.manifest.description} [{how} of {info.name}:{info.number}]"
    return fields


def _speed(parent: TaskModel, child: TaskModel, row: np.ndarray) -> dict[str, Any]:
    """ms per image of each at batch 1 (alternating, so both see the same machine)."""
    times: dict[str, list[float]] = {"parent": [], "new": []}
    for i in range(SPEED_RUNS + 3):
        for key, model in (("parent", parent), ("new", child)):
            t = time.perf_counter()
            model.infer([row])
            if i >= 3:
                times[key].append((time.perf_counter() - t) * 1000)
    ms = {k: float(np.median(v)) for k, v in times.items()}
    return {"parent_ms": round(ms["parent"], 2), "new_ms": round(ms["new"], 2),
            "speedup": round(ms["parent"] / ms["new"], 2) if ms["new"] else None,
            "how": f"median of {SPEED_RUNS} model calls, batch 1, 1 thread, at optimisation "
                   "time (benchmarks/ measures serving)"}


def optimize(
    registry: ModelRegistry,
    store: PackageStore,
    req: OptimizeRequest,
    progress: Progress = lambda _s, _d, _t: None,
    say: Say = lambda _m: None,
) -> OptimizeResult:
    started = time.perf_counter()
    check(req)
    info, parent = resolve(registry, store, req.ref)
    _refuse_unless_quantizable(info, parent)
    parent_model = load_task_model(parent, req.threads, RuntimeChoice())
    work = Path(tempfile.mkdtemp(prefix="argus-optimize-"))
    try:
        comparison = comparison_for(parent_model)
        if comparison is None:
            raise BadInput(f"{info.name} is a {parent.task} model; optimize can compare "
                           "classify, embed and detect answers, so it cannot vouch for this one")
        calibration = None
        if req.calibrate is not None and req.to != "int8":
            say(f"--calibrate is not used for --to {req.to} (nothing is calibrated)")
        if req.calibrate is not None and req.to == "int8":
            calibration = images.from_folder(
                req.calibrate, parent_model, "calibration", images.MAX_CALIBRATION,
                lambda d, t: progress("reading calibration photos", d, t))
            for skipped in calibration.skipped[:5]:
                say(f"skipped {skipped['path']}: {skipped['reason']}")
        held = (images.from_folder(req.held_out, parent_model, "held-out",
                                   progress=lambda d, t: progress("reading held-out images", d, t))
                if req.held_out else
                images.bundled(parent_model, lambda d, t: progress("making held-out images", d, t)))
        dropped = images.drop_near_calibration(held, calibration) if calibration else []
        if dropped:
            say(f"{len(dropped)} held-out images are (nearly) calibration photos: left out")
        if not len(held):
            raise BadInput("every held-out image is also a calibration photo; give other "
                           "--held-out images or calibrate on other photos")
        if len(held) < images.MIN_HELD_OUT:
            say(f"warning: {len(held)} held-out images; the agreement is a rough figure below "
                f"{images.MIN_HELD_OUT}")
        src = work / "package"
        src.mkdir()
        _copy_parent(parent, src)
        model_rel = parent.manifest.model
        t = time.perf_counter()
        if calibration is not None:
            progress("quantizing", 0, 1)
            method = quantize_int8(parent.onnx_files()["model"], src / model_rel,
                                   calibration.rows, work)
            progress("quantizing", 1, 1)
            child_choice = RuntimeChoice()
        else:
            import openvino

            method = {"to": "bf16", "engine": "openvino", "openvino": openvino.__version__,
                      "note": "the same ONNX file; OpenVINO runs it in bf16 where the CPU can"}
            child_choice = RuntimeChoice("openvino", "bf16")
        made_s = time.perf_counter() - t
        # A provisional package (not registered) to load the new model exactly as served.
        lineage = _lineage(info, parent, method, calibration, held, req)
        trial = PackageStore(work / "trial").add(
            src, {**_fields(parent, req.to, lineage, None, info), "name": info.name})
        child_model = load_task_model(trial, req.threads, child_choice)
        try:
            agreement = _compare(comparison, parent_model, child_model, held, progress)
            speed = _speed(parent_model, child_model, held.rows[0])
        finally:
            child_model.close()
        lineage["agreement"] = {k: v for k, v in agreement.items() if k != "disagreements"}
        report = {
            "kind": OPTIMIZED,
            "model": info.name,
            "to": req.to,
            "parent": lineage["parent"],
            "method": method,
            "calibration": {**(lineage.get("calibration") or {}),
                            "skipped": calibration.skipped if calibration else []},
            "held_out": {**lineage["held_out"], "left_out_as_calibration": dropped},
            "agreement": agreement,
            "speed": speed,
            "seconds": {"made": round(made_s, 1),
                        "total": round(time.perf_counter() - started, 1)},
        }
        (src / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        registered = registry.register(
            info.name, src, _fields(parent, req.to, lineage, agreement, info),
            actor=req.actor, parent_version=info.number,
            training_data_digest=calibration.digest if calibration else None,
            metrics={"agreement": agreement["agreement"], "speedup": speed["speedup"],
                     "held_out": agreement["images"]},
        )
    finally:
        parent_model.close()
        shutil.rmtree(work, ignore_errors=True)
    result = OptimizeResult(registered.version, registered.created, report)
    result.promotion = _move(registry, registered.version, comparison, agreement, req, say)
    return result


def _lineage(info: VersionInfo, parent: ModelPackage, method: dict[str, Any],
             calibration: images.Inputs | None, held: images.Inputs,
             req: OptimizeRequest) -> dict[str, Any]:
    lineage: dict[str, Any] = {
        "kind": OPTIMIZED,
        "parent": {"name": info.name, "version": info.number, "digest": parent.digest},
        "method": method,
        "held_out": {"digest": held.digest, "images": len(held),
                     "made_from": "--held-out folder" if req.held_out else
                     "crops, scales and flips of the bundled sample photos "
                     f"({', '.join(images.BUNDLED)})"},
        "code_version": argus.__version__,
    }
    if calibration is not None:
        lineage["calibration"] = {"digest": calibration.digest, "images": len(calibration)}
    return lineage


def _compare(comparison: Comparison, parent: TaskModel, child: TaskModel, held: images.Inputs,
             progress: Progress) -> dict[str, Any]:
    n = len(held)
    a = answers(parent, held, comparison.finished,
                lambda d: progress("answering with the parent", d, n))
    b = answers(child, held, comparison.finished,
                lambda d: progress("answering with the new version", d, n))
    return {"measure": comparison.measure,
            **comparison.compare(parent.package.labels, a, b, held.names)}


def _move(registry: ModelRegistry, new: VersionInfo, comparison: Comparison,
          agreement: dict[str, Any], req: OptimizeRequest, say: Say) -> dict[str, Any] | None:
    """Promote, or start a canary, as asked: with ``--promote-if-agrees`` only when the
    agreement reaches it (both figures go in the audit event)."""
    gate = req.promote_if_agrees
    if gate is None and req.canary is None:
        return None
    value = float(agreement["agreement"])
    detail: dict[str, Any] = {"agreement": value, "measure": comparison.measure,
                              "held_out_images": agreement["images"],
                              "parent": (new.source.get("parent") or {}).get("version")}
    if gate is not None:
        detail["required"] = gate
        if value < gate:
            why = (f"{comparison.measure} {value:.2%} on {agreement['images']} held-out images "
                   f"is below --promote-if-agrees {gate:g}")
            say(f"not {'started as a canary' if req.canary else 'promoted'}: {why}; version "
                f"{new.number} is kept (argus models promote {new.name} {new.number} to use it "
                "anyway)")
            return {"promoted": False, "canary": None, "why": why, **detail}
    if req.canary is not None:
        registry.canary(new.name, new.number, req.canary, actor=req.actor, detail=detail)
        say(f"canary: {req.canary}% of {new.name} now goes to version {new.number}")
        return {"promoted": False, "canary": req.canary, **detail}
    detail["why"] = f"{comparison.measure} {value:.2%} reaches --promote-if-agrees {gate:g}"
    registry.promote(new.name, new.number, actor=req.actor, detail=detail)
    say(f"promoted version {new.number} to production ({detail['why']})")
    return {"promoted": True, "canary": None, **detail}
