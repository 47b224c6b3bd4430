"""``argus.v1.Vision``: the image API over gRPC, with images streamed in chunks.

``Ask`` never holds more than the byte limit of an upload: a header announcing more is refused
before any byte arrives, and the call ends with RESOURCE_EXHAUSTED as soon as the bytes received
would pass the limit. ``AskMany`` answers a session of whole images, several at a time; an image
that fails gets an Answer carrying the error and the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from argus.auth import Tokens, bearer
from argus.contracts import Answer, AskOptions
from argus.core import Core
from argus.errors import ArgusError, BadInput, Forbidden, TooLarge
from argus.generated.v1 import vision_pb2 as v1
from argus.generated.v1 import vision_pb2_grpc
from argus.grpc.errors import handles_errors
from argus.metrics import Metrics

log = logging.getLogger(__name__)
#: grpc.aio.ServicerContext (grpcio ships no type hints).
Context: TypeAlias = Any
#: Images of one AskMany session answered at the same time.
SESSION_CONCURRENCY = 8


def ask_options(message: v1.AskOptions, models: list[str]) -> AskOptions:
    """The core's options from the protobuf ones. Each pin names one of the question's
    ``models`` and a version number or an alias; models not named take their default."""
    for model in message.pins:
        if model not in models:
            raise BadInput(
                f"the pin names model {model!r}, which this question does not use "
                f"(it uses {', '.join(models) or 'no model'})"
            )
    fields: dict[str, Any] = {
        "top_k": message.top_k or None,
        "app": message.app,
        "crops": message.crops,
        "conf": round(message.conf, 6) if message.HasField("conf") else None,
        "record": message.record,
        "pins": dict(message.pins),
        "gallery": message.gallery or None,
        "keep_uncertain": (
            round(message.keep_uncertain, 6) if message.HasField("keep_uncertain") else None
        ),
    }
    return AskOptions.parse(fields, source="grpc")


def answer_json(answer: Answer) -> str:
    return json.dumps(answer.to_json(), separators=(",", ":"))


def answer_error(request_id: str, exc: ArgusError) -> v1.Answer:
    return v1.Answer(
        request_id=request_id,
        error=v1.AnswerError(code=exc.grpc_code, http_status=exc.status, message=exc.message),
    )


def presented_token(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return bearer(value if isinstance(value, str) else value.decode())
    return None


class VisionServicer(vision_pb2_grpc.VisionServicer):
    def __init__(
        self, core: Core, metrics: Metrics, max_bytes: int, tokens: Tokens | None = None
    ) -> None:
        self.core = core
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.tokens = tokens or Tokens()

    def _vectors_need_admin(self, question: str, context: Context) -> None:
        """A question answering embeddings themselves needs an admin token (as over REST)."""
        if not self.tokens.enabled or not self.core.answers_raw_vectors(question):
            return
        if self.tokens.kind(presented_token(context)) != "admin":
            raise Forbidden(
                f"question {question!r} answers face embeddings, which identify people: it "
                "needs an admin token"
            )

    async def _options(self, question: str, options: v1.AskOptions) -> AskOptions:
        if not options.pins:
            return ask_options(options, [])
        asked = await asyncio.to_thread(self.core.question, question)
        return ask_options(options, list(asked.models))

    async def _receive(self, chunks: AsyncIterator[v1.ImageChunk]) -> tuple[v1.AskHeader, bytes]:
        limit = self.max_bytes
        header: v1.AskHeader | None = None
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            kind = chunk.WhichOneof("chunk")
            if header is None:
                if kind != "header":
                    raise BadInput("the first message of Ask must carry the header, not bytes")
                header = chunk.header
                if header.total_bytes > limit:
                    raise TooLarge(
                        f"the image is {header.total_bytes:,} bytes, over the limit of "
                        f"{limit:,} bytes"
                    )
                continue
            if kind != "data":
                raise BadInput("only the first message of Ask carries a header")
            size += len(chunk.data)
            if size > limit:
                raise TooLarge(
                    f"the image is over the limit of {limit:,} bytes: {size:,} bytes had "
                    "arrived when the upload was stopped"
                )
            parts.append(chunk.data)
        if header is None:
            raise BadInput("the Ask stream ended before its header")
        if header.total_bytes and size < header.total_bytes:
            raise BadInput(
                f"the upload was cut short: {size:,} of the {header.total_bytes:,} bytes "
                "announced arrived"
            )
        if header.total_bytes and size > header.total_bytes:
            raise BadInput(
                f"the upload is longer than announced: {size:,} bytes arrived, the header "
                f"said {header.total_bytes:,}"
            )
        data = b"".join(parts)
        parts.clear()
        return header, data

    @handles_errors
    async def Ask(self, request_iterator: AsyncIterator[v1.ImageChunk], context: Context) -> Any:
        header, data = await self._receive(request_iterator)
        self._vectors_need_admin(header.question, context)
        options = await self._options(header.question, header.options)
        answer = await self.metrics.track_ask(
            "grpc", header.question, self.core.ask(header.question, data, options)
        )
        return v1.Answer(request_id=header.request_id, answer_json=answer_json(answer))

    async def _answer_one(self, request: v1.AskRequest, context: Context) -> v1.Answer:
        try:
            self._vectors_need_admin(request.question, context)
            options = await self._options(request.question, request.options)
            answer = await self.metrics.track_ask(
                "grpc", request.question, self.core.ask(request.question, request.image, options)
            )
        except ArgusError as exc:
            return answer_error(request.request_id, exc)
        except Exception as exc:
            log.exception("AskMany: unexpected error on request %r", request.request_id)
            return answer_error(
                request.request_id, ArgusError(f"internal error: {type(exc).__name__}")
            )
        return v1.Answer(request_id=request.request_id, answer_json=answer_json(answer))

    async def AskMany(
        self, request_iterator: AsyncIterator[v1.AskRequest], context: Context
    ) -> AsyncIterator[v1.Answer]:
        answers: asyncio.Queue[v1.Answer | None] = asyncio.Queue()
        slots = asyncio.Semaphore(SESSION_CONCURRENCY)
        pending: set[asyncio.Task[None]] = set()

        async def answer(request: v1.AskRequest) -> None:
            try:
                await answers.put(await self._answer_one(request, context))
            finally:
                slots.release()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()  # backpressure: stop reading while all slots work
                    task = asyncio.create_task(answer(request))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                if pending:
                    await asyncio.gather(*pending)
            finally:
                await answers.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await answers.get()) is not None:
                yield item
            await reader  # surfaces a broken request stream
        finally:
            if not reader.done():
                reader.cancel()
            for task in list(pending):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
