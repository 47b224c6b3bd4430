"""The int8 rows: a copy of the benchmark's home whose production EfficientNet-Lite0 is the int8
version ``argus models optimize`` makes, calibrated on mirrored sample photos and compared with
the fp32 parent on the 200+ crops, scales and flips it holds out (issue 21)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from serving.samples import _sample_photos

LABEL = "argus-int8"
OPTIMIZE_CODE = Path(__file__).resolve().parents[2] / "src" / "argus" / "optimize"
MIN_AGREEMENT = 0.99
TARGET_RATIO = 1.6


def write_calibration(folder: Path) -> Path:
    """Twelve photos: each sample mirrored, whole and as a 0.9 centre crop. The held-out set
    (the originals' crops, scales and flips) leaves out what is (nearly) one of these."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, load in _sample_photos().items():
        rgb = np.ascontiguousarray(load()[:, ::-1, :3])
        h, w = rgb.shape[:2]
        crop = rgb[h // 20 : h - h // 20, w // 20 : w - w // 20]
        Image.fromarray(rgb).save(folder / f"{name}-mirror.jpg", quality=92)
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{name}-mirror-crop.jpg",
                                                         quality=92)
    return folder


def _argus(argus_bin: Path, home: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(argus_bin), *words], env={**os.environ, "ARGUS_HOME": str(home)},
                          capture_output=True, text=True, check=False)


def ensure_int8_home(
    home: Path, work: Path, argus_bin: Path, model: str
) -> tuple[Path, dict[str, Any]]:
    """(the int8 home, the optimize report); made again when the parent or the code that
    makes it changed."""
    parent = json.loads(_argus(argus_bin, home, "models", "show", model, "--json").stdout)
    production = parent["aliases"]["production"]
    digest = next(v["digest"] for v in parent["versions"] if v["version"] == production)
    code = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(OPTIMIZE_CODE.glob("*.py"))))
    key = f"{digest} {code.hexdigest()}"
    dest = work / "home-int8"
    saved = dest / "int8-report.json"
    if saved.is_file():
        kept = json.loads(saved.read_text())
        if kept.get("key") == key:
            return dest, kept["report"]
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(home, dest, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm", "*.log"))
    calibration = write_calibration(work / "calibration")
    print(f"making the int8 version of {model} (argus models optimize) ...", flush=True)
    made = _argus(argus_bin, dest, "models", "optimize", model, "--calibrate", str(calibration),
                  "--json")
    if made.returncode != 0:
        raise RuntimeError(f"argus models optimize failed:\n{made.stdout}{made.stderr}")
    result = json.loads(made.stdout)
    number = str(result["version"]["version"])
    moved = _argus(argus_bin, dest, "models", "promote", model, number)
    if moved.returncode != 0:
        raise RuntimeError(f"argus models promote failed:\n{moved.stderr}")
    saved.write_text(json.dumps({"key": key, "report": result["report"]}, indent=2))
    return dest, result["report"]


def verdict(report: dict[str, Any], ratio: float | None, level: int) -> list[str]:
    """One line: the throughput ratio and the agreement it was bought with, side by side (a
    faster model that answers differently is not the same finding as one that does not)."""
    a = report.get("agreement") or {}
    agree = float(a.get("top1_agreement") or 0)
    speed = (f"{ratio:.2f}x the fp32 ceiling at {level} clients (target >= {TARGET_RATIO})"
             if ratio is not None else f"no throughput row at {level} clients")
    clear = a.get("clear_top1_agreement")
    met = agree >= MIN_AGREEMENT and ratio is not None and ratio >= TARGET_RATIO
    return [
        f"{LABEL}: {'MET ' if met else 'MISS'} {speed}, top-1 agreement with fp32 {agree:.1%} "
        f"on {a.get('images')} held-out images (target >= {MIN_AGREEMENT:.0%}; "
        f"{'-' if clear is None else f'{clear:.1%}'} of {a.get('clear_images')} clear answers, "
        "top-5 overlap "
        f"{a.get('top5_overlap')})",
    ]
