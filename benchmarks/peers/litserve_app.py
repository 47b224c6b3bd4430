"""Peer: LitServe with dynamic batching and one inference worker per core, per its docs.

``LitAPI(max_batch_size=..., batch_timeout=...)`` and ``LitServer(accelerator="cpu",
workers_per_device=...)``; images arrive as the multipart field ``image`` (LitServe parses a
request as JSON or a form, never raw bytes). Decoding runs in ``decode_request`` in the
inference workers, as in LitServe's image examples.
Environment: PEER_MODEL_DIR, PEER_THREADS, PEER_WORKERS, PEER_MAX_BATCH_SIZE,
PEER_BATCH_TIMEOUT_S; the port is the first argument.
"""

import os
import sys
from typing import Any

import litserve as ls
import numpy as np
from pipeline import Classifier, prepare


class ClassifierAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.classifier = Classifier()

    # LitServe reads these two signatures to build its endpoint: an annotated ``request`` would
    # become a query parameter, an annotated return a response model. Left bare, as in its docs.
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return prepare(request["image"].file.read())

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> list[list[dict[str, Any]]]:
        return self.classifier.predict_batch(x)

    def unbatch(self, output: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return output

    def encode_response(self, output):  # type: ignore[no-untyped-def]
        return {"labels": output}


def main() -> None:
    port = int(sys.argv[1])
    api = ClassifierAPI(
        max_batch_size=int(os.environ.get("PEER_MAX_BATCH_SIZE", "8")),
        batch_timeout=float(os.environ.get("PEER_BATCH_TIMEOUT_S", "0.005")),
    )
    server = ls.LitServer(
        api,
        accelerator="cpu",
        workers_per_device=int(os.environ.get("PEER_WORKERS", "2")),
        timeout=120,
    )
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
