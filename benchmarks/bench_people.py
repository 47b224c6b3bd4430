"""Time the ``people`` task (BlazePose person detector) end to end on a 1024x768 photo.

Per thread count: the median of prepare + infer + finish on ONNX Runtime, and the network
alone on LiteRT's reference interpreter reading the original ``.tflite`` (when
``ai-edge-litert`` is installed), on the same input. The photo is scikit-image's astronaut
placed on a 1024x768 grey canvas (one person).

    .venv/bin/python benchmarks/bench_people.py [--runs 50] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from argus.convert import blazepose, mediapipe
from argus.images import DecodedImage
from argus.models.packages import PackageStore
from argus.tasks.people import PeopleModel


def median_ms(call: Callable[[], object], runs: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def photo() -> np.ndarray:
    import skimage.data

    canvas = np.full((768, 1024, 3), 128, dtype=np.uint8)
    canvas[128:640, 256:768] = skimage.data.astronaut()
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "argus")
    args = parser.parse_args()
    rgb = photo()
    image = DecodedImage(rgb, rgb.shape[1], rgb.shape[0], sha256="", format="PNG")
    print(f"{'engine':<28}{'threads':>8}{'ms':>9}{'people':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        package = PackageStore(Path(tmp) / "store").add(
            src, blazepose.build(src, args.cache_dir)
        )
        for threads in (int(t) for t in args.threads.split(",")):
            model = PeopleModel(package, threads)

            def ask(model: PeopleModel = model) -> list[object]:
                raw = model.infer([model.prepare(image, {})])[0]
                found: list[object] = model.finish(raw, image, {})["people"]
                return found

            ms = median_ms(ask, args.runs)
            print(f"{'people, ONNX Runtime':<28}{threads:>8}{ms:>9.1f}{len(ask()):>8}")
            x = model.prepare(image, {})[None]
            ms = median_ms(lambda m=model, x=x: m.ort.run(None, {m.input_name: x}), args.runs)
            print(f"{'network, ONNX Runtime':<28}{threads:>8}{ms:>9.1f}{'':>8}")
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ModuleNotFoundError:
                continue
            data = mediapipe.read_tflite(mediapipe.POSE_DETECTION, args.cache_dir)
            interp = Interpreter(model_content=data, num_threads=threads)
            interp.allocate_tensors()
            index = interp.get_input_details()[0]["index"]

            def litert(interp: Interpreter = interp, x: np.ndarray = x, index: int = index) -> None:
                interp.set_tensor(index, x)
                interp.invoke()

            ms = median_ms(litert, args.runs)
            print(f"{'network, LiteRT':<28}{threads:>8}{ms:>9.1f}{'':>8}")


if __name__ == "__main__":
    main()
