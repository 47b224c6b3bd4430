"""The gateway role: the public API, with every model step sent to a model service over gRPC.

``upstream`` is the pool of model services (retries, health); ``remote`` makes a model service
look like a loaded model to the core (``RemoteHost`` in place of ``ModelHost``); ``plane``
forwards KServe v2 calls.
"""

from __future__ import annotations

from argus.gateway.plane import ProxyPlane
from argus.gateway.remote import GatewayVision, RemoteHost, RemoteModel
from argus.gateway.upstream import UpstreamPool, parse_upstreams

__all__ = [
    "GatewayVision",
    "ProxyPlane",
    "RemoteHost",
    "RemoteModel",
    "UpstreamPool",
    "parse_upstreams",
]
