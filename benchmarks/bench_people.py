"""Time the ``people`` task's two networks and the task end to end.

Per network (the BlazePose detector on the photo's whole 224x224 view, the landmark network on
the people found) and thread count: ONNX Runtime and OpenVINO running the package's converted
graphs, beside LiteRT's reference interpreter reading the original ``.tflite`` (when
``ai-edge-litert`` is installed) on the same inputs, one input at a time as LiteRT takes
them; ratios are against LiteRT at the same thread count, the engines taking turns call by
call so a busy machine weighs on all alike. Then ``people`` end to end (prepare +
both networks + finish) on one thread, on ONNX Runtime and OpenVINO, against the networks
alone on the same inputs (what the task adds around them). The package is built as a pull
builds it, and again with the float detector, so the detector and the task are timed both
ways (float and int8 taking turns call by call). The photo is scikit-image's astronaut on a
1024x768 grey canvas: one person; the detector sees the whole image at 224x224 and, at the
scale that finds 40-pixel faces, 4 tiles of 160x224 (one batch).

    .venv/bin/python benchmarks/bench_people.py [--runs 30] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from timing import medians_ms

from argus.convert import blazepose, blazepose_int8, mediapipe
from argus.engines import RuntimeChoice
from argus.images import DecodedImage
from argus.models.packages import PackageStore
from argus.tasks.people import PeopleModel
from argus.tasks.people.landmarks import CROP_SIZE, crop

TARGET_MS = 60.0


def photo() -> np.ndarray:
    import skimage.data

    canvas = np.full((768, 1024, 3), 128, dtype=np.uint8)
    canvas[128:640, 256:768] = skimage.data.astronaut()
    return canvas


def litert_call(data: bytes, inputs: np.ndarray, threads: int) -> Callable[[], None] | None:
    """LiteRT on each row of ``inputs`` in turn (its graphs have a batch of one)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ModuleNotFoundError:
        return None
    interp = Interpreter(model_content=data, num_threads=threads)
    interp.allocate_tensors()
    index = interp.get_input_details()[0]["index"]

    def run() -> None:
        for row in inputs:
            interp.set_tensor(index, row[None])
            interp.invoke()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "argus")
    args = parser.parse_args()
    rgb = photo()
    image = DecodedImage(rgb, rgb.shape[1], rgb.shape[0], sha256="", format="PNG")
    engines = ["onnxruntime"]
    try:
        import openvino  # noqa: F401

        engines.append("openvino")
    except ModuleNotFoundError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "float"
        src.mkdir()
        fields = blazepose.build_float(src, args.cache_dir)
        store = PackageStore(Path(tmp) / "store")
        packages = {"float": store.add(src, fields)}
        int8_src = Path(tmp) / "int8"
        shutil.copytree(src, int8_src)
        int8_fields = copy.deepcopy(fields)
        made = blazepose_int8.make_int8(int8_src, int8_fields, print)
        if made["detector"] == "int8":
            packages["int8"] = store.add(int8_src, int8_fields)
            check = made["check"]
            print(f"int8 detector: {check['changed']} of {check['people']} held-out people "
                  f"changed, median shift {check['median_shift']} face widths")
        else:
            print(f"no int8 detector: {made['why']}")
        # The same inputs for every engine: the photo's views, and the people found's crops.
        model = PeopleModel(packages["float"], 1)
        prepared = model.prepare(image, {})
        found = model.look(prepared)
        crops = np.empty((len(found.regions), CROP_SIZE, CROP_SIZE, 3), dtype=np.float32)
        for i, where in enumerate(found.regions):
            crop(prepared.rgb, where, crops[i])
        inputs = {"detector": prepared.inputs[0][1], "landmarks": crops}
        members = {"detector": mediapipe.POSE_DETECTION, "landmarks": mediapipe.POSE_LANDMARK_FULL}
        print(f"photo 1024x768: {len(prepared.views)} detector views "
              f"({sum(v.pixels for v in prepared.views):,} input pixels), "
              f"{len(found.regions)} person(s) to the landmark network")
        print(f"{'network':<11}{'engine':<19}{'threads':>8}{'ms':>9}{'vs LiteRT':>11}")
        for threads in (int(t) for t in args.threads.split(",")):
            for net, x in inputs.items():
                calls: dict[str, Callable[[], object]] = {}
                reference = litert_call(mediapipe.read_tflite(members[net], args.cache_dir), x,
                                        threads)
                if reference is not None:
                    calls["LiteRT"] = reference
                # The landmark network is float in both packages.
                kinds = list(packages) if net == "detector" else ["float"]
                for engine in engines:
                    for kind in kinds:
                        task = PeopleModel(packages[kind], threads, RuntimeChoice(engine))
                        session = task.detector if net == "detector" else task.landmarker
                        name = session.get_inputs()[0].name
                        calls[f"{engine} {kind}"] = (
                            lambda s=session, n=name, x=x: s.run(None, {n: x}))
                ms = medians_ms(calls, args.runs)
                for engine, value in ms.items():
                    ratio = f"{value / ms['LiteRT']:>11.2f}" if "LiteRT" in ms else ""
                    print(f"{net:<11}{engine:<19}{threads:>8}{value:>9.1f}{ratio}")
        print(f"\npeople end to end, 1 thread (target under {TARGET_MS:.0f} ms); float and "
              "int8 detector taking turns")
        print(f"{'engine':<19}{'task ms':>9}{'networks ms':>13}{'task/networks':>15}"
              f"{'people':>8}")
        for engine in engines:
            calls = {}
            counts = {}
            for kind, package in packages.items():
                task = PeopleModel(package, 1, RuntimeChoice(engine))

                def ask(task: PeopleModel = task) -> list[Any]:
                    raw = task.infer([task.prepare(image, {})])[0]
                    people: list[Any] = task.finish(raw, image, {})["people"]
                    return people

                def networks(task: PeopleModel = task) -> None:
                    for _views, x in prepared.inputs:
                        task.detector.run(None, {task.detector_input: x})
                    if len(crops):
                        task.landmarker.run(None, {task.landmark_input: crops})

                calls[f"{kind} task"], calls[f"{kind} networks"] = ask, networks
                counts[kind] = len(ask())
            ms = medians_ms(calls, args.runs)
            for kind in packages:
                print(f"{engine + ' ' + kind:<19}{ms[kind + ' task']:>9.1f}"
                      f"{ms[kind + ' networks']:>13.1f}"
                      f"{ms[kind + ' task'] / ms[kind + ' networks']:>15.2f}{counts[kind]:>8}")


if __name__ == "__main__":
    main()
