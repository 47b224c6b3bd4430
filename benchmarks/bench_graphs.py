"""What a gate saves, and what a cached repeat costs.

1. On images where the gate is false, the cost of a graph whose expensive step is gated by a
   cheaper one (``labels`` → ``heavy`` only for cats) against the same graph without the gate.
   ``heavy`` is a deliberately expensive ONNX model this benchmark builds and registers.
   The target is a ratio of at most 1/3.
2. A cached repeat's server-side time (``timings_ms.total`` of a repeated ``describe``), against
   the same question answered uncached in this run. The target is under 1 ms.

Times are the server-side ``timings_ms.total`` of ``Core.ask`` (no HTTP), medians over
repeats. Run: ``.venv/bin/python benchmarks/bench_graphs.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from argus.models.pull import pull
from argus.server import local_core
from argus.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
from tests.asking import ask_json
from tests.built_models import heavy_model

CATS = "['tiger cat', 'tabby', 'Egyptian cat', 'Persian cat', 'Siamese cat']"
GATED = f"""\
    question: gated
    steps:
      labels: {{model: efficientnet-lite0}}
      heavy: {{model: heavy, when: "any labels.label in {CATS}"}}
    answer: [labels, heavy]
    """
UNGATED = """\
    question: ungated
    steps:
      labels: {model: efficientnet-lite0}
      heavy: {model: heavy}
    answer: [labels, heavy]
    """


def photos() -> dict[str, bytes]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    def jpeg(rgb: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
        return buf.getvalue()

    return {
        "coffee": jpeg(skimage.data.coffee()),
        "astronaut": jpeg(skimage.data.astronaut()),
        "china": jpeg(load_sample_image("china.jpg")),
        "flower": jpeg(load_sample_image("flower.jpg")),
    }


def setup(home: Path, work: Path) -> None:
    settings = Settings(home=home)
    core = local_core(settings)
    try:
        pull(core.registry, settings.cache_dir)
        src = work / "heavy"
        src.mkdir()
        heavy_model(src / "model.onnx", side=224, layers=5, channels=64)
        (src / "labels.txt").write_text("a\nb\nc\n")
        core.registry.register(
            "heavy",
            src,
            {
                "task": "classify",
                "model": "model.onnx",
                "labels": "labels.txt",
                "preprocess": {"resize_shorter": 224, "crop": 224, "mean": 127, "std": 128},
                "license": "Apache-2.0",
                "source": {"kind": "benchmark", "note": "built by benchmarks/bench_graphs.py"},
            },
            actor="bench",
        )
        for name, text in (("gated", GATED), ("ungated", UNGATED)):
            path = work / f"{name}.yaml"
            path.write_text(textwrap.dedent(text))
            core.catalogue.add(path)
    finally:
        core.engine.dispose()


def raw_ort_ms(path: Path, side: int, repeats: int) -> float:
    """Median time of one raw ONNX Runtime call on a batch of one: the floor of a step."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.zeros((1, 3, side, side), np.float32)}
    session.run(None, feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(home: Path, images: dict[str, bytes], repeats: int) -> dict[str, Any]:
    core = local_core(Settings(home=home))
    out: dict[str, Any] = {"gate": {}}
    try:
        core.cache.max_entries = 0  # the gate comparison must run the models every time
        for question in ("gated", "ungated"):
            for data in images.values():
                await ask_json(core, question, data)  # load models, warm the sessions
        for name, data in images.items():
            times: dict[str, list[float]] = {"gated": [], "ungated": []}
            for _ in range(repeats):
                for question in ("gated", "ungated"):  # interleaved: both see the same load
                    answer = await ask_json(core, question, data)
                    if question == "gated" and answer["steps"]["heavy"]["skipped"] is None:
                        raise SystemExit(f"the gate opened on {name}; pick another image")
                    times[question].append(answer["timings_ms"]["total"])
            out["gate"][name] = {q: statistics.median(t) for q, t in times.items()}

        core.cache.max_entries = 4096
        astronaut = images["astronaut"]
        uncached = []
        for _ in range(repeats):
            core.cache.clear()
            uncached.append((await ask_json(core, "describe", astronaut))["timings_ms"]["total"])
        cached = []
        for _ in range(max(200, repeats)):
            answer = await ask_json(core, "describe", astronaut)
            if not answer["cached"]:
                raise SystemExit("a repeated describe was not answered from the cache")
            cached.append(answer["timings_ms"]["total"])
        out["describe_uncached_ms"] = statistics.median(uncached)
        out["describe_cached_ms"] = statistics.median(cached)
        out["describe_cached_p99_ms"] = sorted(cached)[int(len(cached) * 0.99) - 1]
        heavy = core.registry.resolve("heavy")
        labels = core.registry.resolve("efficientnet-lite0")
        out["heavy_path"] = heavy.path / "model.onnx"
        out["labels_path"] = labels.path / "model.onnx"
    finally:
        await core.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="argus-bench-graphs-"))
    try:
        home = work / "home"
        setup(home, work)
        images = photos()
        result = asyncio.run(measure(home, images, args.repeats))
        heavy_raw = raw_ort_ms(result["heavy_path"], 224, args.repeats)
        labels_raw = raw_ort_ms(result["labels_path"], 224, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("Gate: `labels` decides whether `heavy` runs; images where the gate is false")
    print(f"  baseline, raw ONNX Runtime: heavy {heavy_raw:.1f} ms, labels {labels_raw:.1f} ms")
    print(f"  {'image':<10} {'gated ms':>9} {'ungated ms':>11} {'gated/ungated':>14}")
    ratios = []
    for name, t in result["gate"].items():
        ratio = t["gated"] / t["ungated"]
        ratios.append(ratio)
        print(f"  {name:<10} {t['gated']:>9.1f} {t['ungated']:>11.1f} {ratio:>14.3f}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    verdict = "ok" if max(ratios) <= 1 / 3 else "OVER the 1/3 target"
    print(f"  geometric mean ratio {geo:.3f}, worst {max(ratios):.3f} (target <= 0.333: {verdict})")
    cached = result["describe_cached_ms"]
    uncached = result["describe_uncached_ms"]
    print("Cache: `describe` on the same image again (server-side timings_ms.total)")
    p99 = result["describe_cached_p99_ms"]
    print(
        f"  uncached {uncached:.2f} ms, cached {cached:.3f} ms (p99 {p99:.3f} ms), "
        f"cached/uncached {cached / uncached:.4f}"
    )
    print(f"  target < 1 ms: {'ok' if cached < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
