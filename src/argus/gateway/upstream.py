"""The model services behind a gateway: one gRPC channel per address, several per model.

Every KServe v2 call is idempotent (inference has no side effects), so a call that cannot reach
an upstream (UNAVAILABLE: refused, reset, overloaded) is retried on the model's next upstream.
Upstreams that failed last are tried last; when none answers, the call fails with
``Unavailable`` naming each upstream and why.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from argus.errors import ConfigError, Unavailable
from argus.generated import inference_pb2_grpc
from argus.grpc.errors import from_status

log = logging.getLogger(__name__)

#: Codes on which the same call goes to the next upstream of the model.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # Notice a restarted model service within a couple of seconds, not gRPC's default 2 minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.enable_retries", 0),  # retries are ours, across upstreams
]


def parse_upstreams(specs: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=HOST:PORT`` flags as {model: [address, ...]}, in the order given."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, address = spec.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not name or not colon or not host or not port.isdigit():
            raise ConfigError(
                f"--upstream {spec!r} must look like MODEL=HOST:PORT, e.g. "
                "efficientnet-lite0=127.0.0.1:8101"
            )
        addresses = out.setdefault(name.strip(), [])
        if address not in addresses:
            addresses.append(address)
    return out


@dataclass
class Upstream:
    model: str
    address: str
    stub: Any
    up: bool = True
    reason: str = ""
    changed_at: float = field(default_factory=time.monotonic)

    def mark(self, up: bool, reason: str = "") -> None:
        if up != self.up:
            log.warning(
                "upstream %s of %s is %s%s",
                self.address,
                self.model,
                "up again" if up else "down",
                f": {reason}" if reason else "",
            )
            self.changed_at = time.monotonic()
        self.up, self.reason = up, reason


def _short(details: str | None) -> str:
    text = (details or "no details").strip()
    if "Connection refused" in text:
        return "connection refused"
    if "failed to connect" in text.lower():
        return "cannot connect"
    return text if len(text) <= 200 else text[:197] + "..."


class UpstreamPool:
    def __init__(
        self,
        targets: dict[str, list[str]],
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if not targets:
            raise ConfigError("the gateway needs at least one --upstream MODEL=HOST:PORT")
        self.timeout_s = timeout_s
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        options = [
            *CHANNEL_OPTIONS,
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._options = options
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._upstreams: dict[str, list[Upstream]] = {}
        self._turn = itertools.count()
        self._targets = targets

    def _connect(self) -> None:
        # Channels belong to the event loop that creates them: made on first use.
        for model, addresses in self._targets.items():
            ups = []
            for address in addresses:
                channel = self._channels.get(address)
                if channel is None:
                    channel = grpc.aio.insecure_channel(address, options=self._options)
                    self._channels[address] = channel
                ups.append(Upstream(model, address, inference_pb2_grpc.GRPCInferenceServiceStub(
                    channel
                )))
            self._upstreams[model] = ups

    def __contains__(self, model: object) -> bool:
        return model in self._targets

    def models(self) -> list[str]:
        return sorted(self._targets)

    def status(self) -> list[dict[str, Any]]:
        out = []
        for model, addresses in sorted(self._targets.items()):
            known = {u.address: u for u in self._upstreams.get(model, [])}
            for address in addresses:
                up = known.get(address)
                out.append(
                    {
                        "model": model,
                        "address": address,
                        "up": up.up if up else True,
                        "reason": up.reason if up else "",
                    }
                )
        return out

    def require(self, model: str) -> None:
        """Raise Unavailable, saying how to fix it, unless some upstream serves ``model``."""
        if model not in self._targets:
            served = ", ".join(self.models())
            raise Unavailable(
                f"no model service is configured for model {model!r} (the gateway has "
                f"upstreams for {served}); start it with --upstream {model}=HOST:PORT"
            )

    def _order(self, model: str) -> list[Upstream]:
        self.require(model)
        if not self._upstreams:
            self._connect()
        ups = self._upstreams[model]
        start = next(self._turn) % len(ups)
        rotated = ups[start:] + ups[:start]
        return sorted(rotated, key=lambda u: not u.up)  # stable: up ones first, in turn

    async def call(self, model: str, method: str, request: Any) -> Any:
        """Call ``method`` of GRPCInferenceService on an upstream of ``model``."""
        failures: list[str] = []
        for upstream in self._order(model):
            rpc = getattr(upstream.stub, method)
            try:
                response = await rpc(request, timeout=self.timeout_s, metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), _short(exc.details())
                if code in RETRY_CODES:
                    upstream.mark(False, details)
                    failures.append(f"{upstream.address}: {details}")
                    continue
                upstream.mark(True)
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise Unavailable(
                        f"model service {upstream.address} did not answer {model!r} within "
                        f"{self.timeout_s:g} s"
                    ) from None
                raise from_status(code, details, f"model service {upstream.address}") from None
            upstream.mark(True)
            return response
        raise Unavailable(f"no model service for {model!r} is up: " + "; ".join(failures))

    async def close(self, grace: float | None = None) -> None:
        for channel in self._channels.values():
            await channel.close(grace)
        self._channels.clear()
        self._upstreams.clear()


__all__ = ["Upstream", "UpstreamPool", "parse_upstreams"]
