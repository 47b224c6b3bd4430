"""How a pipeline gets its answers: the batching runtime in this process, or a gateway's
``POST /v1/questions/{question}`` over HTTP. Both sort failures the same way
(:func:`sort_failure`): the image is bad (quarantine it), the pipeline is set up wrong (stop:
nothing is lost, the files stay), or the service is busy or away (try again later)."""

from __future__ import annotations

from typing import Protocol

from argus.contracts import Answer, AskOptions
from argus.core import Core
from argus.errors import ArgusError, ConfigError, PackageRefused


class BadImage(Exception):
    """The input itself is wrong; retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TryLater(Exception):
    """The service could not answer now (overloaded, loading, unreachable)."""


#: Statuses that say the image itself is wrong (not an image, damaged, too large).
IMAGE_STATUSES = frozenset({400, 413, 415})
#: Statuses that say the pipeline asks for something that is not there or not allowed, or a
#: model that cannot be used (a damaged package): every image would fail alike.
SETUP_STATUSES = frozenset({401, 403, 404, 422})


def sort_failure(status: int, reason: str) -> Exception:
    """What a failed answer (its HTTP status) means for the file it was asked of."""
    if status in IMAGE_STATUSES:
        return BadImage(reason)
    if status in SETUP_STATUSES:
        return ConfigError(reason)
    return TryLater(reason)


class Asker(Protocol):
    async def ask(self, data: bytes) -> Answer: ...

    async def close(self) -> None: ...


class LocalAsker:
    def __init__(self, core: Core, question: str, options: AskOptions) -> None:
        self.core = core
        self.question = question
        # record=False: the pipeline writes its own record as its checkpoint (exactly once).
        self.options = options.model_copy(update={"record": False, "source": "ingest"})

    async def start(self) -> None:
        self.core.question(self.question)  # unknown question: fail now, not per file
        await self.core.preload()

    async def ask(self, data: bytes) -> Answer:
        try:
            return await self.core.ask(self.question, data, self.options)
        except PackageRefused as exc:  # the model's fault: stop, do not retry every file
            raise ConfigError(exc.message) from exc
        except ArgusError as exc:
            raise sort_failure(exc.status, exc.message) from exc

    async def close(self) -> None:
        await self.core.close()


class GatewayAsker:
    def __init__(
        self, base_url: str, question: str, options: AskOptions, token: str | None = None
    ) -> None:
        import httpx

        self.url = f"{base_url.rstrip('/')}/v1/questions/{question}"
        self.params = {k: v for k, v in options.query().items() if k != "record"}
        headers = {"Content-Type": "application/octet-stream"}
        if options.app:
            headers["X-Argus-App"] = options.app
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.AsyncClient(timeout=60.0, headers=headers)

    async def start(self) -> None:
        return None

    async def ask(self, data: bytes) -> Answer:
        import httpx

        try:
            response = await self.client.post(self.url, content=data, params=self.params)
        except httpx.HTTPError as exc:
            raise TryLater(f"the gateway did not answer: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        if response.status_code == 200:
            try:
                return Answer.from_json(body)
            except ValueError as exc:
                raise TryLater(f"the gateway's answer is not an Argus answer: {exc}") from exc
        reason = str(body.get("error") if isinstance(body, dict) else body)
        status = response.status_code
        if status in SETUP_STATUSES:
            reason = f"the gateway refused {self.url}: {reason}"
        elif status not in IMAGE_STATUSES:
            reason = f"the gateway answered {status}: {reason}"
        raise sort_failure(status, reason)

    async def close(self) -> None:
        await self.client.aclose()
