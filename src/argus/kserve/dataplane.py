"""The one place KServe v2 calls are answered, for REST and gRPC alike.

A model is called in one of two ways:

* with its own input tensors, already preprocessed (the model's metadata names them): the
  outputs are the model's raw output tensors, straight from ONNX Runtime;
* with encoded image files as a BYTES input named ``image`` (shape ``[N]``): Argus decodes and
  preprocesses each image as the image API does, runs the model through its batching queue and
  returns ``answer`` (BYTES ``[N]``, each element the JSON answer object that
  ``POST /v1/questions/{model}`` returns under ``"answer"``) and, when the task's per-image result
  is a tensor, ``scores`` (those results stacked, e.g. class probabilities).

JSON cannot carry binary BYTES elements: send images as binary data, or as base64 strings with
the input parameter ``content_type: "base64"`` (MLServer's convention).

Request parameters for image inputs: ``top_k``, ``conf`` and ``crops`` as on REST, or
``argus_params`` (a JSON object: the exact task parameters, as the gateway sends them). The
gateway also sends ``argus_digest`` (the package digest it resolved, checked here so that both
sides answer with the same package) and, for tensors it preprocessed itself, ``argus_prepared``
and ``argus_image`` (tasks that declare ``takes_prepared_input``).

A model name is a registered model; the version is a number, an alias, or empty for the version
the registry serves by default (``production``, else the newest).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from argus.contracts import MAX_VERSION, AskOptions
from argus.core import Core
from argus.errors import ArgusError, BadInput, BadPackage, Conflict, NotFound, PackageRefused
from argus.images import DecodedImage, ImageSource, sha256_bytes
from argus.kserve.tensors import (
    InferRequest,
    InferResponse,
    InferTensor,
    ModelMetadata,
    TensorSpec,
    select_outputs,
)
from argus.models.packages import read_manifest
from argus.models.versions import VersionInfo
from argus.runtime.host import Loaded, ModelHost
from argus.runtime.runner import ModelAnswer

log = logging.getLogger(__name__)

SERVER_NAME = "argus"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ("binary_tensor_data", "argus_image_input")
PLATFORM = "onnxruntime_onnx"
IMAGE_INPUT = "image"
ANSWER_OUTPUT = "answer"
SCORES_OUTPUT = "scores"


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}


def version_ref(name: str, version: str) -> tuple[int | None, str | None]:
    """(number, alias) of a KServe version: a number in ASCII digits, else an alias, or
    neither for the default. A number past any the registry holds is no version of the
    model (404), as any other version it does not have."""
    if not version:
        return None, None
    if not (version.isascii() and version.isdigit()):
        return None, version
    number = int(version)
    if not 1 <= number <= MAX_VERSION:
        raise NotFound(f"model {name!r} has no version {version}")
    return number, None


class ModelPlane(Protocol):
    """The KServe v2 calls every transport serves: in process, or forwarded by the gateway."""

    def ready(self) -> bool: ...

    async def model_metadata(self, name: str, version: str) -> ModelMetadata: ...

    async def model_ready(self, name: str, version: str) -> bool: ...

    async def infer(self, name: str, version: str, request: InferRequest) -> InferResponse: ...


def _specs(entries: Sequence[Any]) -> list[TensorSpec]:
    specs = []
    for entry in entries:
        if isinstance(entry, dict) and "name" in entry:
            shape = tuple(int(d) for d in entry.get("shape") or ())
            specs.append(TensorSpec(str(entry["name"]), str(entry.get("datatype", "")), shape))
    return specs


def task_params(parameters: dict[str, Any]) -> dict[str, Any]:
    """The task parameters of an image request (see the module docstring)."""
    if "argus_params" in parameters:
        raw = parameters["argus_params"]
        try:
            given = json.loads(raw) if isinstance(raw, str) else None
        except json.JSONDecodeError:
            given = None
        if not isinstance(given, dict):
            raise BadInput("the parameter argus_params must be a JSON object")
        return given
    return AskOptions.parse(parameters).params()


def _unbase64(item: bytes, index: int) -> bytes:
    try:
        return base64.b64decode(item, validate=True)
    except binascii.Error:
        raise BadInput(
            f"image #{index} of input {IMAGE_INPUT!r} is not valid base64 (its "
            "content_type parameter says base64)"
        ) from None


class LocalPlane:
    """Answers v2 calls with the models of this process (all-in-one and model roles).

    ``models`` limits the names served (a model service's ``--models``); None serves every
    registered model.
    """

    def __init__(self, core: Core, host: ModelHost, models: Sequence[str] | None = None) -> None:
        self.core = core
        self.host = host
        self.models = frozenset(models) if models else None

    # -- which version -------------------------------------------------------------------

    def _check_served(self, name: str) -> None:
        if self.models is not None and name not in self.models:
            served = ", ".join(sorted(self.models))
            raise NotFound(f"this model service serves only {served}, not {name!r}")

    def _resolve_sync(self, name: str, number: int | None, alias: str | None) -> VersionInfo:
        return self.core.resolutions.resolve(name, version=number, alias=alias)

    async def resolve(self, name: str, version: str) -> VersionInfo:
        self._check_served(name)
        number, alias = version_ref(name, version)
        resolutions = self.core.resolutions
        if resolutions.fresh():  # answered from memory: no thread hop on the hot path
            hit = resolutions.peek(name, number, alias)
            if hit is not None:
                return hit
        return await asyncio.to_thread(self._resolve_sync, name, number, alias)

    def served_versions(self) -> list[VersionInfo]:
        """The default version of every model this process serves (what readiness waits for)."""
        registry = self.core.registry
        names = sorted(self.models) if self.models is not None else registry.names()
        out = []
        for name in names:
            try:
                out.append(registry.resolve(name))
            except NotFound:
                continue
        return out

    # -- protocol calls -------------------------------------------------------------------

    def ready(self) -> bool:
        return bool(self.core.ready)

    async def model_metadata(self, name: str, version: str) -> ModelMetadata:
        info = await self.resolve(name, version)
        manifest, versions = await asyncio.to_thread(self._manifest_and_versions, info)
        inputs = _specs(manifest.get("inputs") or [])
        outputs = _specs(manifest.get("outputs") or [])
        if not any(t.name == IMAGE_INPUT for t in inputs):
            inputs.append(TensorSpec(IMAGE_INPUT, "BYTES", (-1,)))
        outputs.append(TensorSpec(ANSWER_OUTPUT, "BYTES", (-1,)))
        return ModelMetadata(info.name, versions, PLATFORM, inputs, outputs)

    def _manifest_and_versions(self, info: VersionInfo) -> tuple[dict[str, Any], list[str]]:
        shown = self.core.registry.show(info.name)
        return read_manifest(info.path), [str(v.number) for v in shown.versions]

    async def model_ready(self, name: str, version: str) -> bool:
        info = await self.resolve(name, version)
        return self.host.is_loaded(info.digest)

    async def _loaded(self, info: VersionInfo) -> Loaded:
        """The loaded model of ``info``; a refused package is 503 with the reason, as the
        image API answers it (not the 422 of a package being checked)."""
        refused = self.core.refused.get(info.digest)
        if refused is not None:
            raise PackageRefused(refused["reason"])
        try:
            return await self.host.get(info)
        except BadPackage as exc:
            raise PackageRefused(
                f"model {info.name} version {info.number} is refused: {exc.message}"
            ) from exc

    async def infer(self, name: str, version: str, request: InferRequest) -> InferResponse:
        info = await self.resolve(name, version)
        expected = request.parameters.get("argus_digest")
        if expected is not None and expected != info.digest:
            raise Conflict(
                f"{info.name} version {info.number} is {info.digest} here but the caller "
                f"expected {expected}; the gateway and this model service read different "
                "registries"
            )
        entry = await self._loaded(info)
        by_name = {t.name: t for t in request.inputs}
        declared = _specs(entry.model.metadata().get("inputs") or [])
        parameters: dict[str, Any] = {"argus_digest": info.digest}
        if IMAGE_INPUT in by_name and not any(s.name == IMAGE_INPUT for s in declared):
            if len(by_name) != 1:
                raise BadInput(
                    f"an {IMAGE_INPUT!r} input cannot be combined with other inputs "
                    f"({', '.join(sorted(set(by_name) - {IMAGE_INPUT}))})"
                )
            outputs, infer_ms = await self._infer_images(
                entry, by_name[IMAGE_INPUT], task_params(request.parameters)
            )
            parameters["argus_infer_ms"] = round(infer_ms, 3)
        elif request.parameters.get("argus_prepared") is True:
            outputs, infer_ms = await self._infer_prepared(entry, declared, request)
            parameters["argus_infer_ms"] = round(infer_ms, 3)
        else:
            outputs = await self._infer_tensors(entry, declared, by_name)
        return InferResponse(
            model_name=info.name,
            model_version=str(info.number),
            id=request.id,
            outputs=select_outputs(request, outputs),
            parameters=parameters,
        )

    # -- image inputs ----------------------------------------------------------------------

    async def _infer_images(
        self, entry: Loaded, tensor: InferTensor, params: dict[str, Any]
    ) -> tuple[list[InferTensor], float]:
        if tensor.datatype != "BYTES":
            raise BadInput(
                f"input {IMAGE_INPUT!r} must be BYTES (encoded image files), not {tensor.datatype}"
            )
        items = [bytes(item) for item in tensor.data.reshape(-1)]
        if not items:
            raise BadInput(f"input {IMAGE_INPUT!r} holds no image")
        if tensor.parameters.get("content_type") == "base64":
            items = [_unbase64(item, index) for index, item in enumerate(items)]
        version, limits = entry.version, self.core.limits
        # The image API's own model step, one image source per file: the same decode,
        # batching and answer.
        results = await asyncio.gather(
            *(
                self.host.answer(version, ImageSource(item, sha256_bytes(item), limits), params)
                for item in items
            )
        )
        return self._image_outputs(results)

    async def _run(
        self, entry: Loaded, image: DecodedImage, prepared: Any, params: dict[str, Any]
    ) -> ModelAnswer:
        started = time.perf_counter()
        raw = await entry.batcher.submit(prepared)
        infer_ms = (time.perf_counter() - started) * 1000
        answer = await asyncio.to_thread(entry.model.finish, raw, image, params)
        return ModelAnswer(answer, raw, infer_ms)

    @staticmethod
    def _image_outputs(results: Sequence[ModelAnswer]) -> tuple[list[InferTensor], float]:
        answers = np.empty(len(results), dtype=np.object_)
        answers[:] = [
            json.dumps(one.result, separators=(",", ":")).encode("utf-8") for one in results
        ]
        outputs = [InferTensor(ANSWER_OUTPUT, "BYTES", answers.shape, answers)]
        raws = [one.raw for one in results]
        if all(isinstance(r, np.ndarray) and r.dtype.kind in "biuf" for r in raws) and (
            len({r.shape for r in raws}) == 1
        ):
            outputs.append(InferTensor.from_numpy(SCORES_OUTPUT, np.stack(raws)))
        infer_ms = sum(one.infer_ms for one in results) / len(results)
        return outputs, infer_ms

    # -- tensors the caller preprocessed ---------------------------------------------------

    async def _infer_prepared(
        self, entry: Loaded, declared: list[TensorSpec], request: InferRequest
    ) -> tuple[list[InferTensor], float]:
        """Rows of the model's input, preprocessed by the caller, answered through the batcher."""
        task = entry.model.task
        if not entry.model.takes_prepared_input or len(declared) != 1 or len(request.inputs) != 1:
            raise BadInput(
                f"{task} models take encoded images or their own tensors, not prepared inputs"
            )
        tensor = request.inputs[0]
        self._check_tensor(declared[0], tensor)
        facts = request.parameters.get("argus_image")
        try:
            info: dict[str, Any] = json.loads(facts) if isinstance(facts, str) else {}
            image = DecodedImage(
                rgb=np.zeros((0, 0, 3), dtype=np.uint8),
                width=int(info["width"]),
                height=int(info["height"]),
                sha256=str(info["sha256"]),
                format=str(info.get("format", "")),
            )
        except (TypeError, KeyError, ValueError, AttributeError):
            raise BadInput(
                "prepared inputs need the parameter argus_image: a JSON object with the "
                "image's sha256, width and height"
            ) from None
        params = task_params(request.parameters)
        rows = np.ascontiguousarray(tensor.data, dtype=tensor.data.dtype)
        results = await asyncio.gather(
            *(self._run(entry, image, row, params) for row in rows)
        )
        return self._image_outputs(results)

    # -- the model's own tensors -----------------------------------------------------------

    @staticmethod
    def _check_tensor(spec: TensorSpec, tensor: InferTensor) -> None:
        where = f"input {spec.name!r}"
        if tensor.datatype != spec.datatype:
            raise BadInput(f"{where} must be {spec.datatype}, not {tensor.datatype}")
        if len(tensor.shape) != len(spec.shape) or any(
            want >= 0 and want != got for want, got in zip(spec.shape, tensor.shape, strict=True)
        ):
            raise BadInput(
                f"{where} has shape {list(tensor.shape)}; the model takes {list(spec.shape)} "
                "(-1: any size)"
            )

    async def _infer_tensors(
        self, entry: Loaded, declared: list[TensorSpec], inputs: dict[str, InferTensor]
    ) -> list[InferTensor]:
        name = entry.version.name
        if not declared:
            raise BadInput(
                f"model {name!r} takes encoded images: send them as a BYTES input named "
                f"{IMAGE_INPUT!r}"
            )
        wanted = {spec.name for spec in declared}
        unknown = sorted(set(inputs) - wanted)
        missing = sorted(wanted - set(inputs))
        if unknown or missing:
            raise BadInput(
                f"model {name!r} takes the inputs {sorted(wanted)} (or encoded images as "
                f"{IMAGE_INPUT!r}); "
                + (f"unknown: {unknown}" if unknown else f"missing: {missing}")
            )
        feed = {}
        for spec in declared:
            self._check_tensor(spec, inputs[spec.name])
            feed[spec.name] = np.ascontiguousarray(inputs[spec.name].data)
        loop = asyncio.get_running_loop()
        try:
            raw = await loop.run_in_executor(
                self.host.infer_pool, entry.model.infer_tensors, feed
            )
        except ArgusError:
            raise
        except NotImplementedError as exc:
            raise BadInput(str(exc)) from None
        except Exception as exc:  # ONNX Runtime rejects what the metadata could not express
            log.info("tensor inference on %s failed: %s", name, exc)
            raise BadInput(f"model {name!r} could not run on these tensors: {exc}") from None
        return [InferTensor.from_numpy(key, np.asarray(value)) for key, value in raw.items()]
