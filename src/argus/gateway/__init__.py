"""The gateway role: the public API, with every model step sent to a model service over gRPC.

``upstream`` is the pool of model services (retries, health); ``runner`` is the core's model
runner over that pool (``RemoteRunner``); ``plane`` forwards KServe v2 calls.
"""

from __future__ import annotations

from argus.gateway.plane import ProxyPlane
from argus.gateway.runner import RemoteRunner
from argus.gateway.upstream import UpstreamPool, parse_upstreams

__all__ = ["ProxyPlane", "RemoteRunner", "UpstreamPool", "parse_upstreams"]
