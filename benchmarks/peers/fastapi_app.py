"""Peer: naive FastAPI as its tutorial has it, served by ``uvicorn --workers 2``.

A plain ``def`` endpoint (FastAPI runs it in its thread pool, as its docs advise for blocking
work), the model loaded at import in each worker, the image as the raw request body.
Environment: PEER_MODEL_DIR (package directory), PEER_THREADS (ONNX Runtime threads per worker).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI
from pipeline import Classifier

app = FastAPI()
classifier = Classifier()


@app.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


@app.post("/predict")
def predict(image: bytes = Body(media_type="image/jpeg")) -> dict[str, Any]:
    return classifier.classify(image)
