"""What keep-uncertain costs an answer: ``Core.ask("labels")`` in process on N distinct
images (no step-cache hits), one after the other, three ways on the same core settings:

1. off: keep-uncertain off (the default);
2. keep all: a threshold of 1.0, so every image is kept (the write path on every answer);
3. canary: a canary of efficientnet-lite0 at 0% (a retrain with the same network), so after
   every answer the keeper asks the canary the same image in the background.

Prints the median and 90th percentile of the answer's time and the answers per second for
each; the keeper's work runs after each answer, so what it costs shows as load on the next.

    .venv/bin/python benchmarks/bench_review.py [--images 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image

from argus.contracts import AskOptions
from argus.db.engine import make_engine, migrate
from argus.models.packages import PackageStore
from argus.models.pull import pull
from argus.models.registry import ModelRegistry
from argus.server import local_core
from argus.settings import Settings

MODEL = "efficientnet-lite0"


def images(count: int) -> list[bytes]:
    """Distinct 320x240 JPEGs cut from real sample photos (scikit-image)."""
    import skimage.data

    photos = [Image.fromarray(a) for a in (skimage.data.coffee(), skimage.data.chelsea(),
                                            skimage.data.astronaut(), skimage.data.rocket())]
    rng = random.Random(3)
    out = []
    for _ in range(count):
        photo = rng.choice(photos)
        w, h = photo.size
        x, y = rng.randint(0, w - 320), rng.randint(0, h - 240)
        buf = io.BytesIO()
        photo.crop((x, y, x + 320, y + 240)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def prepare(home: Path) -> None:
    """The default models pulled (from the converted cache) and a canary of efficientnet-lite0
    at 0%: version 2, the same network, so the two agree and nothing is kept by it."""
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    registry = ModelRegistry(engine, PackageStore(settings.packages_dir))
    pull(registry, settings.cache_dir)
    v1 = registry.resolve(MODEL, version=1)
    src = home.parent / "v2"
    shutil.copytree(v1.path, src)
    manifest = yaml.safe_load((src / "argus.yaml").read_text())
    (src / "argus.yaml").unlink()
    fields = {k: v for k, v in manifest.items() if k not in ("files", "format")}
    fields["description"] = f"{fields.get('description', '')} (retrained)"
    registry.register(MODEL, src, fields, actor="bench", parent_version=1)
    engine.dispose()


async def run(settings: Settings, data: list[bytes], mode: str) -> tuple[list[float], float]:
    core = local_core(settings)
    try:
        if mode == "canary":  # the last mode: the others run without a canary
            core.registry.canary(MODEL, 2, 0, actor="bench")
            core.resolutions.refresh(force=True)
        options = AskOptions(keep_uncertain={"off": 0.0, "keep all": 1.0, "canary": 0.01}[mode])
        await core.ask("labels", data[0] + b"warm", options)  # loads the model(s)
        await core.keeper.idle()
        times = []
        started = time.perf_counter()
        for image in data:
            t0 = time.perf_counter()
            await core.ask("labels", image, options)
            times.append((time.perf_counter() - t0) * 1000)
        await core.keeper.idle()
        elapsed = time.perf_counter() - started
        events = dict(core.keeper.events())
        print(f"  {mode}: kept {events['kept']}, compared {events['compared']}, "
              f"dropped {events['dropped']}, failed {events['failed']}")
        return times, len(data) / elapsed
    finally:
        await core.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argus-bench-review-") as tmp:
        home = Path(tmp) / "home"
        prepare(home)
        data = images(args.images)
        for mode in ("off", "keep all", "canary"):
            # Each mode on a core of its own, with its own images (a trailing mark the decoder
            # ignores): nothing comes from the step cache or was kept before.
            marked = [image + mode.encode() for image in data]
            times, rate = asyncio.run(run(Settings(home=home), marked, mode))
            q = statistics.quantiles(times, n=10)
            print(f"{mode:>9}: median {statistics.median(times):6.2f} ms, p90 {q[8]:6.2f} ms, "
                  f"{rate:6.1f} answers/s (the keeper's work included)")


if __name__ == "__main__":
    main()
