"""KServe v2 over REST: ``/v2``, ``/v2/health/*``, ``/v2/models/{m}[/versions/{v}]`` with
``/ready`` and ``/infer`` (JSON or the binary tensor data extension). Converts and delegates to
the app's ModelPlane."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from argus.http.body import read_body
from argus.http.docs import error_responses
from argus.http.params import KServeVersion, ModelName
from argus.kserve.dataplane import ModelPlane, server_metadata
from argus.kserve.rest import REQUEST_SCHEMA, decode_rest_request, encode_rest_response
from argus.kserve.tensors import InferRequest, InferResponse
from argus.metrics import Metrics

router = APIRouter(tags=["kserve v2"])
HEADER_LENGTH = "inference-header-content-length"
#: Largest /infer body accepted besides the image limit (a batch of preprocessed tensors).
MIN_INFER_BODY = 64 * 1024 * 1024


def _plane(request: Request) -> ModelPlane:
    plane: ModelPlane = request.app.state.plane
    return plane


def infer_body_limit(max_image_bytes: int) -> int:
    return max(max_image_bytes + 1024 * 1024, MIN_INFER_BODY)


@router.get("/v2/health/live", tags=["health"])
async def live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@router.get("/v2/health/ready", tags=["health"])
async def ready(request: Request) -> Response:
    """200 once every model this process serves is loaded or refused (``refused`` lists
    those whose package failed its checks, with the reason), 503 before."""
    refused = request.app.state.refused()
    if _plane(request).ready():
        return JSONResponse({"ready": True, "refused": refused})
    return JSONResponse({"ready": False, "error": "models are still loading", "refused": refused},
                        status_code=503)


@router.get("/v2")
async def metadata() -> dict[str, Any]:
    """Server name, version and the protocol extensions supported."""
    return server_metadata()


#: A model's calls can refuse an unknown model or version (404) or a malformed version (422).
MODEL = error_responses(404)
INFER = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": REQUEST_SCHEMA}},
    },
}


@router.get("/v2/models/{name}", responses=MODEL)
async def model_metadata(name: ModelName, request: Request) -> dict[str, Any]:
    """Versions, inputs and outputs (name, datatype, shape) of a model."""
    return (await _plane(request).model_metadata(name, "")).to_dict()


@router.get("/v2/models/{name}/versions/{version}", responses=MODEL)
async def version_metadata(
    name: ModelName, version: KServeVersion, request: Request
) -> dict[str, Any]:
    """Versions, inputs and outputs (name, datatype, shape) of a version of a model."""
    return (await _plane(request).model_metadata(name, version)).to_dict()


async def _ready(request: Request, name: str, version: str) -> Response:
    ready = await _plane(request).model_ready(name, version)
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)


@router.get("/v2/models/{name}/ready", responses=MODEL)
async def model_ready(name: ModelName, request: Request) -> Response:
    """200 when the model's default version is loaded, 503 when it is not (yet)."""
    return await _ready(request, name, "")


@router.get("/v2/models/{name}/versions/{version}/ready", responses=MODEL)
async def version_ready(name: ModelName, version: KServeVersion, request: Request) -> Response:
    """200 when the model version is loaded, 503 when it is not (yet)."""
    return await _ready(request, name, version)


async def _infer(request: Request, name: str, version: str) -> Response:
    metrics: Metrics = request.app.state.metrics
    decoded: InferRequest | None = None

    async def run() -> InferResponse:
        nonlocal decoded
        body = await read_body(request, request.app.state.infer_body_limit)
        decoded = decode_rest_request(body, request.headers.get(HEADER_LENGTH))
        return await _plane(request).infer(name, version, decoded)

    def answered(response: InferResponse) -> list[tuple[str, str]]:
        return [(response.model_name, response.model_version)]

    response = await metrics.track("http", "", run(), answered)
    content, header_length = encode_rest_response(response, decoded)
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


INFER_ERRORS = error_responses(400, 404, 409, 413, 499)


@router.post("/v2/models/{name}/infer", openapi_extra=INFER, responses=INFER_ERRORS)
async def infer(name: ModelName, request: Request) -> Response:
    """Run a model on its own tensors, or on encoded images as a BYTES input named ``image``.

    JSON, or a JSON header of ``Inference-Header-Content-Length`` bytes followed by binary
    tensor data (the inputs declare ``parameters.binary_data_size`` instead of ``data``).
    """
    return await _infer(request, name, "")


@router.post(
    "/v2/models/{name}/versions/{version}/infer", openapi_extra=INFER, responses=INFER_ERRORS
)
async def infer_version(name: ModelName, version: KServeVersion, request: Request) -> Response:
    """Run a version of a model: as ``/v2/models/{name}/infer``."""
    return await _infer(request, name, version)
