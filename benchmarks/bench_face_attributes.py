"""Time MediaPipe's face mesh and iris networks (converted by Argus) on ONNX Runtime and
OpenVINO against LiteRT reading the original ``.tflite``, 1 and 2 threads, and the
face-attributes task end to end (mesh, both irises, measures) for 1 and 4 faces.

Inputs are real: the astronaut's mesh crop (scikit-image) and her eye crops, cut as the graph
cuts them. Ratios are against LiteRT measured in the same run (lower is faster).

    .venv/bin/python benchmarks/bench_face_attributes.py [--runs 50] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from timing import median_ms

from argus.convert import facemesh, mediapipe
from argus.engines import RuntimeChoice
from argus.images import DecodedImage
from argus.models.packages import PackageStore
from argus.tasks import face_geometry as geo
from argus.tasks.face_attributes import FaceAttributesModel


def astronaut_crop() -> np.ndarray:
    import skimage.data

    # MTCNN's box and eyes on this photo (as tests/tasks/test_face_geometry.py).
    matrix = geo.face_crop_matrix((180.8, 61.4, 268.4, 172.3), ((204.7, 101.0), (247.2, 103.1)))
    crop = cv2.warpAffine(skimage.data.astronaut(), matrix, (192, 192), flags=cv2.INTER_LINEAR)
    return np.asarray(crop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "argus")
    args = parser.parse_args()
    from ai_edge_litert.interpreter import Interpreter

    crop = astronaut_crop()
    image = DecodedImage(crop, 192, 192, sha256="", format="crop")
    print(f"{'what':<34}{'threads':>8}{'ms':>9}{'vs LiteRT':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        package = PackageStore(Path(tmp) / "store").add(src, facemesh.build(src, args.cache_dir))
        for threads in (int(t) for t in args.threads.split(",")):
            engines = {
                "ONNX Runtime": FaceAttributesModel(package, threads),
                "OpenVINO": FaceAttributesModel(
                    package, threads, RuntimeChoice(engine="openvino")),
            }
            x_mesh = engines["ONNX Runtime"].prepare(image, {})[None]
            mesh = engines["ONNX Runtime"].infer([x_mesh[0]])[0].mesh
            x_eye = cv2.warpAffine(x_mesh[0], geo.eye_crop_matrix(mesh, "left"), (64, 64))[None]
            for member, x, role in ((mediapipe.FACE_LANDMARK, x_mesh, "landmark"),
                                    (mediapipe.IRIS_LANDMARK, x_eye, "iris")):
                interp = Interpreter(model_content=mediapipe.read_tflite(member, args.cache_dir),
                                     num_threads=threads)
                interp.allocate_tensors()
                index = interp.get_input_details()[0]["index"]

                def litert(interp: Interpreter = interp, x: np.ndarray = x,
                           index: int = index) -> None:
                    interp.set_tensor(index, x)
                    interp.invoke()

                base = median_ms(litert, args.runs, warmup=5)
                print(f"{member.name + ', LiteRT':<34}{threads:>8}{base:>9.2f}{1.0:>11.2f}")
                for name, model in engines.items():
                    session = getattr(model, role)
                    feed = {session.get_inputs()[0].name: x}
                    ms = median_ms(lambda s=session, f=feed: s.run(None, f), args.runs, warmup=5)
                    print(f"{member.name + ', ' + name:<34}{threads:>8}{ms:>9.2f}"
                          f"{ms / base:>11.2f}")
            for faces in (1, 4):
                model = engines["ONNX Runtime"]

                def task(model: FaceAttributesModel = model, n: int = faces) -> None:
                    rows = [model.prepare(image, {}) for _ in range(n)]
                    for raw in model.infer(rows):
                        model.finish(raw, image, {})

                ms = median_ms(task, args.runs, warmup=5)
                print(f"{f'face-attributes, {faces} face(s), ORT':<34}{threads:>8}{ms:>9.2f}"
                      f"{'':>11}")


if __name__ == "__main__":
    main()
