"""Training on scikit-learn's digits: what ``argus train`` reaches against the baselines.

1,797 8x8 scans of the digits 0-9, a stratified 25% held out (seed 0; the split ``argus train``
makes). Printed side by side, all measured in this run:

- logistic regression on the raw 64 pixels (scikit-learn): the baseline to beat;
- ``--mode head``: a softmax head on EfficientNet-Lite0's frozen pooled features (numpy);
- ``--mode auto`` (the default): the head, then fine-tuning the whole network when torch is
  installed and the head leaves room (needs the ``train`` extra).

Target (issue 16): auto >= 98.0% held-out accuracy in under 3 minutes on this machine.
Run: ``.venv/bin/python benchmarks/bench_train.py [--runs N] [--modes head,auto]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.pull import pull
from argus.models.registry import ModelRegistry
from argus.settings import Settings
from argus.train import data as photos
from argus.train.run import TrainRequest, train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
from tests.train.conftest import write_digits


def pixel_baseline(examples: list[photos.Example], held: list[photos.Example]) -> float:
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    def pixels(ex: list[photos.Example]) -> np.ndarray:
        return np.stack([np.asarray(Image.open(e.path), np.float32).ravel() / 255 for e in ex])

    model = LogisticRegression(max_iter=5000).fit(pixels(examples), [e.label for e in examples])
    return float(np.mean(model.predict(pixels(held)) == np.array([e.label for e in held])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat and print the range")
    parser.add_argument("--modes", default="head,auto")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="argus-bench-train-"))
    try:
        settings = Settings(home=work / "home")
        engine = make_engine(settings.db_url)
        migrate(engine)
        registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
        pull(registry, settings.cache_dir, ["efficientnet-lite0"])
        data = write_digits(work / "digits", tuple(range(10)), 10_000)
        items = photos.from_folder(data)
        dataset = photos.read(items)
        train_ex, held_ex = photos.split(dataset, 0.25, seed=0)
        rows: dict[str, list[tuple[float, float]]] = {}
        for run in range(args.runs):
            t = time.perf_counter()
            acc = pixel_baseline(train_ex, held_ex)
            rows.setdefault("logistic, raw pixels", []).append((acc, time.perf_counter() - t))
            for mode in args.modes.split(","):
                t = time.perf_counter()
                # a fresh embedding cache each run: the time includes embedding every photo
                result = train(registry, registry.store, work / f"cache-{run}-{mode}",
                               TrainRequest(f"digits-{mode}", items, val=0.25, mode=mode))
                label = f"argus train --mode {mode}"
                if mode == "auto":
                    label += f" ({result.report['mode']})"
                rows.setdefault(label, []).append(
                    (result.report["held_out"]["accuracy"], time.perf_counter() - t)
                )
                print(f"run {run + 1}: {label}: {result.report['held_out']['accuracy']:.2%} "
                      f"in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        base = np.mean([a for a, _ in rows["logistic, raw pixels"]])
        print(f"digits: {len(train_ex)} train / {len(held_ex)} held out, {args.runs} run(s)")
        print(f"{'method':<40} {'accuracy':>15} {'vs pixels':>9} {'seconds':>11}")
        for name, values in rows.items():
            accs = [a for a, _ in values]
            secs = [s for _, s in values]
            acc = f"{min(accs):.2%}" + (f"-{max(accs):.2%}" if len(accs) > 1 else "")
            sec = f"{min(secs):.0f}" + (f"-{max(secs):.0f}" if len(secs) > 1 else "")
            print(f"{name:<40} {acc:>15} {np.mean(accs) - base:>+9.2%} {sec:>11}")
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
