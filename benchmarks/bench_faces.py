"""Time the MTCNN cascade on scikit-image's astronaut (512x512) with 1 and 2 ORT threads.

Prints the median time per image after warm-up, and its ratio to facenet-pytorch 2.6.0's
figures measured on the reference machine (97 ms with 1 thread, 51 ms with 2). Those figures
come from another run, so the script also times, in this process, the same numpy cascade
driving the torch networks rebuilt in ``tests/convert/reference.py`` (needs torch): a same-run
baseline that shares the machine's current load.

    .venv/bin/python benchmarks/bench_faces.py [--runs 30] [--threads 1,2] [--models DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from argus.tasks.faces import MTCNN, load_sessions

REFERENCE_MS = {1: 97.0, 2: 51.0}
NETWORKS = ("pnet", "rnet", "onet")


def median_ms(detector: MTCNN, rgb: np.ndarray, runs: int, warmup: int) -> tuple[float, int]:
    for _ in range(warmup):
        faces = detector.detect(rgb)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        faces = detector.detect(rgb)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, len(faces)


def ort_detector(models: Path, threads: int, spinning: bool) -> MTCNN:
    """Sessions with onnxruntime's defaults (spinning workers), or from ``load_sessions``."""
    import onnxruntime as ort

    if not spinning:
        sessions = load_sessions({n: models / f"{n}.onnx" for n in NETWORKS}, threads)
        return MTCNN(sessions["pnet"], sessions["rnet"], sessions["onet"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return MTCNN(
        *(
            ort.InferenceSession(
                str(models / f"{n}.onnx"), options, providers=["CPUExecutionProvider"]
            )
            for n in NETWORKS
        )
    )


def row(label: str, threads: int, ms: float, found: int, versus: str = "") -> None:
    ref = REFERENCE_MS.get(threads)
    ratio = f"{ms / ref:.2f}x" if ref else "-"
    print(f"{label:<26}{threads:>8}{ms:>10.1f}{found:>7}{ratio:>9}{versus:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per setting (median)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="comma-separated ORT intra-op threads")
    parser.add_argument("--models", type=Path, help="directory with pnet/rnet/onet.onnx")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "argus")
    parser.add_argument("--no-torch", action="store_true", help="skip the same-run torch baseline")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]

    import skimage.data

    rgb = skimage.data.astronaut()
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models
        if models is None:
            from argus.convert.mtcnn import build

            models = Path(tmp)
            build(models, args.cache_dir)
        print(f"MTCNN on astronaut {rgb.shape[1]}x{rgb.shape[0]}, median of {args.runs} runs")
        header = ("runtime", "threads", "ms/image", "faces", "vs ref", "vs torch")
        print("{:<26}{:>8}{:>10}{:>7}{:>9}{:>10}".format(*header))
        ort_ms: dict[int, float] = {}
        for threads in thread_counts:
            for spinning in (False, True) if threads > 1 else (False,):
                detector = ort_detector(models, threads, spinning)
                ms, found = median_ms(detector, rgb, args.runs, args.warmup)
                if not spinning:
                    ort_ms[threads] = ms
                label = "onnxruntime" + (" (spinning)" if spinning else "")
                row(label, threads, ms, found)
        if args.no_torch:
            return
        import torch

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
        from tests.convert.reference import TorchSession, mtcnn_torch

        nets = mtcnn_torch(args.cache_dir)
        pnet, rnet, onet = (TorchSession(n, nets[n]) for n in NETWORKS)
        torch_detector = MTCNN(pnet, rnet, onet)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            ms, found = median_ms(torch_detector, rgb, args.runs, args.warmup)
            row("torch, same cascade", threads, ms, found, f"{ort_ms[threads] / ms:.2f}x")
    print("vs ref: ms / facenet-pytorch's figure (97 ms, 51 ms); vs torch: onnxruntime / torch ms")
    print("(spinning): onnxruntime's default worker spinning, which load_sessions turns off")


if __name__ == "__main__":
    main()
