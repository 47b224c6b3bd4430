"""Peer: Flask behind gunicorn with sync workers (``gunicorn -w 2``), as both their docs show.

The model is loaded at import, once per worker (no ``--preload``: an ONNX Runtime session
should not cross a fork). Environment: PEER_MODEL_DIR, PEER_THREADS.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from pipeline import Classifier

app = Flask(__name__)
classifier = Classifier()


@app.get("/health")
def health() -> Response:
    return jsonify(ok=True)


@app.post("/predict")
def predict() -> Response:
    return jsonify(classifier.classify(request.get_data()))
