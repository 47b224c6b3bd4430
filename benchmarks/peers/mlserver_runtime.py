"""Peer: Seldon MLServer with a custom runtime, adaptive batching and parallel workers.

As MLServer's custom-runtime docs have it: an ``MLModel`` with ``load`` and ``predict``,
``model-settings.json`` naming it (``max_batch_size``, ``max_batch_time``) and
``settings.json`` with ``parallel_workers``. Images arrive in the V2 protocol as a BYTES input
with the ``base64`` content type (MLServer's REST API takes JSON only); answers go back as one
JSON string per image. The settings files are written by the benchmark (serving/systems.py).
"""

from __future__ import annotations

import json

import numpy as np
from mlserver import MLModel
from mlserver.codecs import Base64Codec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse
from pipeline import Classifier, prepare


class ClassifierRuntime(MLModel):
    async def load(self) -> bool:
        self.classifier = Classifier(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = self.decode(payload.inputs[0], default_codec=Base64Codec)
        results = self.classifier.predict_batch(np.stack([prepare(data) for data in images]))
        answers = [json.dumps({"labels": labels}) for labels in results]
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[StringCodec.encode_output("labels", answers)],
        )
