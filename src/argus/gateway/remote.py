"""A model service that looks like a loaded model to the core.

``GatewayVision`` is the core of the gateway role: the same ``Vision`` (questions, graphs,
registry, records), with ``RemoteHost`` in place of ``ModelHost``. The core still decodes each
image (for its facts and for graph ops), then hands every model step to ``RemoteHost.run``,
which sends it to an upstream over KServe v2 gRPC:

* as the request's own image file (BYTES input ``image``) when the step is about the image the
  client sent — the model service then decodes and preprocesses it exactly as all-in-one does;
* as the preprocessed input tensor when that is fewer bytes than the file (a large PNG) and the
  gateway holds the model's package and its task takes prepared inputs
  (``PREPARED_INPUT_TASKS``);
* as a lossless PNG of the pixels for any other image (a crop made by a graph op).

In every case the model service decodes the answer with the same package (the digest travels
with the call and is checked), so the answer is the one all-in-one gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from argus.errors import ArgusError, Unavailable
from argus.images import DecodedImage
from argus.kserve.dataplane import ANSWER_OUTPUT, IMAGE_INPUT, PREPARED_INPUT_TASKS
from argus.kserve.grpc import decode_grpc_response, encode_grpc_request
from argus.kserve.tensors import InferRequest, InferTensor, RequestedOutput
from argus.packages import ModelPackage, PackageStore, Preprocess
from argus.registry import VersionInfo
from argus.runtime.batching import Batcher, Deferred
from argus.runtime.host import Loaded, ModelHost
from argus.service import AskOptions, Vision
from argus.settings import Settings
from argus.tasks.base import TaskModel

from .upstream import UpstreamPool

log = logging.getLogger(__name__)


@dataclass
class _Source:
    """The encoded image of the request being answered (its digest computed on demand)."""

    data: bytes
    _sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.data).hexdigest()
        return self._sha256


_SOURCE: contextvars.ContextVar[_Source | None] = contextvars.ContextVar(
    "argus_gateway_source", default=None
)


@contextlib.contextmanager
def request_image(data: bytes) -> Iterator[None]:
    """Within this block (and the tasks and threads it starts), ``data`` is the file of the
    request being answered: model steps on its image send the file, not its pixels."""
    token = _SOURCE.set(_Source(data))
    try:
        yield
    finally:
        _SOURCE.reset(token)


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class RemoteModel(TaskModel):
    """A model version served by a model service. ``prepare`` builds the KServe request for one
    image (see the module docstring); the model service infers and decodes, so ``finish``
    returns its answer as it came."""

    def __init__(self, version: VersionInfo, package: ModelPackage | None) -> None:
        stand_in = ModelPackage(
            path=version.path,
            manifest={"name": version.name, "task": version.task},
            digest=version.digest,
        )
        super().__init__(package or stand_in, threads=0)
        self.task = version.task
        self.version = version
        self.pre: Preprocess | None = None
        self.input_name = ""
        self.tensor_bytes = 0
        inputs = (package.manifest.get("inputs") or []) if package is not None else []
        if package is not None and version.task in PREPARED_INPUT_TASKS and len(inputs) == 1:
            self.pre = package.preprocess
            self.input_name = str(inputs[0]["name"])
            self.tensor_bytes = 4 * 3 * self.pre.crop * self.pre.crop  # FP32 CxHxW

    @property
    def min_side(self) -> int | None:
        if self.pre is not None:
            return self.pre.resize_shorter
        # The model service decodes the file itself: the gateway needs no pixels of it (a JPEG
        # is decoded at 1/8 scale just for its facts; graph ops decode full size on their own).
        return 1

    def prepare(self, image: DecodedImage, params: dict[str, Any]) -> InferRequest:
        parameters: dict[str, Any] = {
            "argus_digest": self.version.digest,
            "argus_params": json.dumps(params, separators=(",", ":"), default=str),
        }
        source = _SOURCE.get()
        data = source.data if source is not None and source.sha256 == image.sha256 else None
        if data is not None and self.pre is not None and len(data) > self.tensor_bytes:
            from argus.tasks.classify import preprocess

            batch = preprocess(image.rgb, self.pre)[None]
            tensor = InferTensor(self.input_name, "FP32", batch.shape, batch)
            parameters["argus_prepared"] = True
            parameters["argus_image"] = json.dumps({**image.info(), "format": image.format})
        else:
            files = np.empty(1, dtype=np.object_)
            files[0] = data if data is not None else png_bytes(image.rgb)
            tensor = InferTensor(IMAGE_INPUT, "BYTES", (1,), files)
        return InferRequest(
            inputs=[tensor],
            outputs=[RequestedOutput(ANSWER_OUTPUT)],
            parameters=parameters,
            model_name=self.version.name,
            model_version=str(self.version.number),
        )

    def infer(self, prepared: Sequence[Any]) -> list[Any]:
        raise RuntimeError(f"{self.version.name} runs on its model service, not in the gateway")

    def finish(
        self, raw: dict[str, Any], image: DecodedImage, params: dict[str, Any]
    ) -> dict[str, Any]:
        return raw


def _never(_items: Sequence[Any]) -> list[Any]:
    raise RuntimeError("remote models are batched by their model service")


class RemoteBatcher(Batcher[InferRequest, dict[str, Any]]):
    """``submit`` sends one prepared request to an upstream and returns the answer object; the
    model service batches it with the other requests it gets."""

    def __init__(self, pool: UpstreamPool, name: str) -> None:
        super().__init__(_never, max_wait_ms=0, name=name)
        self.pool = pool
        self.in_flight = 0

    @property
    def depth(self) -> int:
        return self.in_flight

    async def submit(
        self, item: InferRequest | Deferred[InferRequest], expected: bool = False
    ) -> dict[str, Any]:
        if expected:
            self.unexpect()
        if isinstance(item, Deferred):  # decode and build the request off the event loop
            item = await asyncio.to_thread(item.make)
        self.in_flight += 1
        try:
            message = encode_grpc_request(item)
            reply = await self.pool.call(item.model_name, "ModelInfer", message)
        finally:
            self.in_flight -= 1
        self.stats.record(1)
        response = decode_grpc_response(reply)
        answers = [t for t in response.outputs if t.name == ANSWER_OUTPUT]
        if not answers or answers[0].data.size != 1:
            raise Unavailable(f"the model service of {item.model_name} sent no answer")
        answer: dict[str, Any] = json.loads(bytes(answers[0].data.reshape(-1)[0]))
        return answer


class RemoteHost(ModelHost):
    """``ModelHost``'s surface (``get``, ``run``, ``loaded``, ``close``) over model services:
    ``get`` gives a ``Loaded`` whose model is a ``RemoteModel`` and whose batcher a
    ``RemoteBatcher``, so the core runs model steps exactly as it does in process."""

    def __init__(self, store: PackageStore, pool: UpstreamPool) -> None:
        super().__init__(store)
        self.pool = pool
        self._remote: dict[str, Loaded] = {}

    def loaded(self) -> list[Loaded]:
        return []  # nothing runs here: model memory and queues are on the model services

    def is_loaded(self, digest: str) -> bool:
        return digest in self._remote

    def _local_package(self, version: VersionInfo) -> ModelPackage | None:
        if version.task not in PREPARED_INPUT_TASKS or not version.path.is_dir():
            return None
        try:
            return self.store.load(version.digest)
        except ArgusError as exc:
            log.info("sending images, not tensors, to %s: %s", version.name, exc.message)
            return None

    async def get(self, version: VersionInfo) -> Loaded:
        self.pool.require(version.name)
        entry = self._remote.get(version.digest)
        if entry is None:
            package = await asyncio.to_thread(self._local_package, version)
            now = time.monotonic()
            batcher = RemoteBatcher(self.pool, f"{version.name}:{version.number}")
            entry = Loaded(version, RemoteModel(version, package), batcher, 0, "remote", now, now)
            self._remote[version.digest] = entry
        entry.last_used = time.monotonic()
        return entry

    async def close(self) -> None:
        await super().close()
        await self.pool.close()


class GatewayVision(Vision):
    """The core with its model steps on model services (see the module docstring)."""

    def __init__(self, settings: Settings, pool: UpstreamPool) -> None:
        super().__init__(settings)
        # Until Vision takes a host: swap it in where the core looks for it.
        local = self.host
        remote = RemoteHost(self.store, pool)
        self.host = remote
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.host = remote
        local.infer_pool.shutdown(wait=False)
        local.load_pool.shutdown(wait=False)
        self.pool = pool

    async def ask(
        self, question: str, data: bytes, options: AskOptions | None = None
    ) -> dict[str, Any]:
        with request_image(data):
            return await super().ask(question, data, options)

    async def preload(self) -> None:
        """Ready once the registry answers: model services have readiness of their own, and a
        question whose model service is down gets its own 503 without blocking the others."""
        names = await asyncio.to_thread(self.registry.names)
        missing = sorted(set(names) - set(self.pool.models()))
        if missing:
            log.warning(
                "no --upstream for %s: questions on these models will answer 503",
                ", ".join(missing),
            )
        self.ready = True


__all__ = ["GatewayVision", "RemoteBatcher", "RemoteHost", "RemoteModel", "request_image"]
