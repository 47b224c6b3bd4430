"""The gateway's :class:`~argus.runtime.runner.ModelRunner`: every model step goes to a model
service over KServe v2 gRPC.

A step is sent

* as the request's own image file (BYTES input ``image``) when the step is about the image the
  client sent — the model service then decodes and preprocesses it exactly as all-in-one does;
* as the preprocessed input tensor when that is fewer bytes than the file (a large PNG) and the
  gateway holds the model's package and its task takes prepared inputs;
* as a lossless PNG of the pixels for any other image (a crop made by a graph op).

In every case the model service decodes the answer with the same package (the digest travels
with the call and is checked), so the answer is the one all-in-one gives. Nothing runs here:
model memory, queues and batching are on the model services.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from argus.errors import ArgusError, Unavailable
from argus.images import DecodedImage, ImageSource, png_bytes
from argus.kserve.dataplane import ANSWER_OUTPUT, IMAGE_INPUT
from argus.kserve.grpc import decode_grpc_response, encode_grpc_request
from argus.kserve.tensors import InferRequest, InferTensor, RequestedOutput
from argus.models.packages import PackageStore
from argus.models.versions import VersionInfo
from argus.runtime.runner import LoadedModel, ModelAnswer
from argus.tasks import InputPreparer, task_class

from .upstream import UpstreamPool

log = logging.getLogger(__name__)


class RemoteRunner:
    def __init__(self, pool: UpstreamPool, store: PackageStore) -> None:
        self.pool = pool
        self.store = store
        self._preparers: dict[str, InputPreparer | None] = {}
        self.events: dict[str, int] = {"loads": 0, "unloads": 0}

    # -- the protocol ---------------------------------------------------------------------

    async def answer(
        self, version: VersionInfo, image: ImageSource, params: dict[str, Any]
    ) -> ModelAnswer:
        self.pool.require(version.name)
        return await self._call(await self.request(version, image, params))

    async def answer_crops(
        self, version: VersionInfo, crops: Sequence[DecodedImage], params: dict[str, Any]
    ) -> list[ModelAnswer]:
        if not crops:
            return []
        self.pool.require(version.name)
        requests = await asyncio.to_thread(
            lambda: [self.crop_request(version, crop, params) for crop in crops]
        )
        return list(await asyncio.gather(*(self._call(r) for r in requests)))

    async def load(self, version: VersionInfo) -> None:
        """Nothing to load: a model service has readiness of its own, and a question whose
        model service is down gets its own 503 without blocking the others."""

    def retire(self, live: set[str]) -> None:
        """Nothing is held here: the model services retire their own."""
        for digest in set(self._preparers) - live:
            del self._preparers[digest]

    def loaded(self) -> Sequence[LoadedModel]:
        return []

    async def close(self) -> None:
        await self.pool.close()

    # -- requests -------------------------------------------------------------------------

    async def request(
        self, version: VersionInfo, image: ImageSource, params: dict[str, Any]
    ) -> InferRequest:
        """The call for a step on the request's image: its file, or the preprocessed tensor
        when that is fewer bytes (see the module docstring)."""
        preparer = await self._preparer(version)
        if preparer is not None and len(image.data) > preparer.tensor_bytes:
            decoded = await image.get(preparer.min_side)
            return await asyncio.to_thread(
                self._tensor_request, version, preparer, decoded, params
            )
        return self._request(version, image.data, params)

    def crop_request(
        self, version: VersionInfo, crop: DecodedImage, params: dict[str, Any]
    ) -> InferRequest:
        """The call for a step on pixels a graph op made: a lossless PNG of them."""
        return self._request(version, png_bytes(crop.rgb, 1), params)

    @staticmethod
    def _parameters(version: VersionInfo, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "argus_digest": version.digest,
            "argus_params": json.dumps(params, separators=(",", ":"), default=str),
        }

    def _request(self, version: VersionInfo, file: bytes, params: dict[str, Any]
                 ) -> InferRequest:
        files = np.empty(1, dtype=np.object_)
        files[0] = file
        return InferRequest(
            inputs=[InferTensor(IMAGE_INPUT, "BYTES", (1,), files)],
            outputs=[RequestedOutput(ANSWER_OUTPUT)],
            parameters=self._parameters(version, params),
            model_name=version.name,
            model_version=str(version.number),
        )

    def _tensor_request(
        self,
        version: VersionInfo,
        preparer: InputPreparer,
        image: DecodedImage,
        params: dict[str, Any],
    ) -> InferRequest:
        batch = preparer.prepare(image)[None]
        parameters = self._parameters(version, params)
        parameters["argus_prepared"] = True
        parameters["argus_image"] = json.dumps({**image.info(), "format": image.format})
        return InferRequest(
            inputs=[InferTensor(preparer.input_name, "FP32", batch.shape, batch)],
            outputs=[RequestedOutput(ANSWER_OUTPUT)],
            parameters=parameters,
            model_name=version.name,
            model_version=str(version.number),
        )

    async def _preparer(self, version: VersionInfo) -> InputPreparer | None:
        if version.digest not in self._preparers:
            self._preparers[version.digest] = await asyncio.to_thread(
                self._load_preparer, version
            )
        return self._preparers[version.digest]

    def _load_preparer(self, version: VersionInfo) -> InputPreparer | None:
        if not task_class(version.task).takes_prepared_input or not version.path.is_dir():
            return None
        try:
            package = self.store.load(version.digest)
        except ArgusError as exc:
            log.info("sending images, not tensors, to %s: %s", version.name, exc.message)
            return None
        return task_class(version.task).input_preparer(package)

    async def _call(self, request: InferRequest) -> ModelAnswer:
        started = time.perf_counter()
        reply = await self.pool.call(request.model_name, "ModelInfer",
                                     encode_grpc_request(request))
        infer_ms = (time.perf_counter() - started) * 1000
        response = decode_grpc_response(reply)
        answers = [t for t in response.outputs if t.name == ANSWER_OUTPUT]
        if not answers or answers[0].data.size != 1:
            raise Unavailable(f"the model service of {request.model_name} sent no answer")
        result: dict[str, Any] = json.loads(bytes(answers[0].data.reshape(-1)[0]))
        return ModelAnswer(result, None, infer_ms)


__all__ = ["RemoteRunner"]
