"""Closed-loop HTTP load generator, run as its own process: ``python loadgen.py --url ...``.

N workers, each with its own ``httpx.AsyncClient`` holding one HTTP/1.1 keep-alive connection
(``--shared-pool``: one client with N connections, much dearer at 64, see ``measure``); each
sends the next pre-read JPEG as soon as its previous answer arrives. After a warm-up, requests
are timed for a fixed duration (or up to a fixed count, for soaks); when time is up no new
request starts and those in flight are awaited, so no orphan work spills into the next run.
Prints the lines ``measure-start`` and ``measure-end`` around the measured phase, then one
JSON object, on stdout. Standard library + httpx only, so it stays cheap and portable.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import resource
import secrets
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import httpx

BOUNDARY = "argus-bench-boundary-7f3a"
MEASURE_START = "measure-start"
MEASURE_END = "measure-end"
# Unique across processes (a run nonce) and within one (a counter).
TAGS = (f"argus-bench {os.getpid()}-{secrets.token_hex(4)}-{n}".encode() for n in count())


@dataclass(frozen=True)
class BodyTemplate:
    """A request body with a slot right after the JPEG's end marker for a per-request tag.

    Decoders stop at the end marker, so the work is the same, but every request's bytes differ:
    a server that caches answers by image digest (Argus does) is measured working, not
    remembering."""

    prefix: bytes
    suffix: bytes = b""

    def render(self, tag: bytes = b"") -> bytes:
        return self.prefix + tag + self.suffix


def encode_bodies(images: list[bytes], body_format: str) -> tuple[list[BodyTemplate], str]:
    """Request bodies built once up front, and their content type. ``body_format`` is ``raw``
    (the JPEG as the body), ``multipart:FIELD`` or ``v2:INPUT`` (KServe V2 JSON, one BYTES
    input in base64, the tag in the request id)."""
    kind, _, name = body_format.partition(":")
    if kind == "raw":
        return [BodyTemplate(data) for data in images], "image/jpeg"
    if kind == "multipart" and name:
        head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="image.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        bodies = [BodyTemplate(head + data, tail) for data in images]
        return bodies, f"multipart/form-data; boundary={BOUNDARY}"
    if kind == "v2" and name:
        bodies = []
        for data in images:
            tensor = {
                "name": name,
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"content_type": "base64"},
                "data": [base64.b64encode(data).decode()],
            }
            bodies.append(
                BodyTemplate(b'{"id": "', ('", "inputs": [' + json.dumps(tensor) + "]}").encode())
            )
        return bodies, "application/json"
    raise ValueError(f"body format is raw, multipart:FIELD or v2:INPUT, not {body_format!r}")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def worker(
    client: httpx.AsyncClient,
    url: str,
    bodies: list[BodyTemplate],
    start_index: int,
    until: float,
    budget: list[int],
    tally: Tally,
) -> None:
    """Send requests back to back until the deadline or until the shared budget is spent."""
    i = start_index
    while time.perf_counter() < until:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        body = bodies[i % len(bodies)].render(next(TAGS))
        i += 1
        tally.sent += 1
        t0 = time.perf_counter()
        try:
            response = await client.post(url, content=body)
            await response.aread()
        except httpx.HTTPError as exc:
            tally.errors[type(exc).__name__] += 1
            continue
        if response.status_code == 200:
            tally.latencies.append(time.perf_counter() - t0)
        else:
            tally.errors[f"HTTP {response.status_code}"] += 1


async def run_phase(
    clients: list[httpx.AsyncClient],
    url: str,
    bodies: list[BodyTemplate],
    seconds: float,
    max_requests: int | None,
) -> tuple[Tally, float]:
    """One worker per client list entry (entries may repeat: a shared pool)."""
    tally = Tally()
    budget = [max_requests if max_requests is not None else sys.maxsize]
    t0 = time.perf_counter()
    until = t0 + seconds
    await asyncio.gather(
        *(worker(c, url, bodies, n, until, budget, tally) for n, c in enumerate(clients))
    )
    return tally, time.perf_counter() - t0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    images = [p.read_bytes() for p in sorted(Path(args.images).glob("*.jpg"))]
    if not images:
        raise SystemExit(f"no *.jpg in {args.images}")
    bodies, content_type = encode_bodies(images, args.body)
    async with AsyncExitStack() as stack:
        # One connection per pool by default: httpcore's pool scans every request against every
        # connection on each event, which at 64 connections in one pool cost the client ~10 ms
        # of CPU per request here (cProfile: _assign_requests_to_connections), stolen from the
        # server on the same cores. Keep-alive and the bytes are the same either way.
        pools, per_pool = (1, args.concurrency) if args.shared_pool else (args.concurrency, 1)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        made = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    limits=limits,
                    timeout=httpx.Timeout(args.timeout),
                    headers={"content-type": content_type},
                    http1=True,
                    http2=False,
                )
            )
            for _ in range(pools)
        ]
        clients = made * args.concurrency if args.shared_pool else made
        if args.warmup > 0:
            await run_phase(clients, args.url, bodies, args.warmup, None)
        # Markers let the parent sample the server's CPU over exactly the measured phase.
        print(MEASURE_START, flush=True)
        cpu0 = cpu_seconds()
        seconds = args.duration if args.requests is None else float("inf")
        tally, elapsed = await run_phase(clients, args.url, bodies, seconds, args.requests)
        cpu = cpu_seconds() - cpu0
        print(MEASURE_END, flush=True)
    lat = sorted(tally.latencies)
    ms = 1000.0
    return {
        "concurrency": args.concurrency,
        "elapsed_s": round(elapsed, 3),
        "sent": tally.sent,
        "ok": len(lat),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "images_per_s": round(len(lat) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": round(percentile(lat, 50) * ms, 2),
        "p90_ms": round(percentile(lat, 90) * ms, 2),
        "p99_ms": round(percentile(lat, 99) * ms, 2),
        "max_ms": round((lat[-1] if lat else 0.0) * ms, 2),
        "client_cpu_cores": round(cpu / elapsed, 3) if elapsed > 0 else 0.0,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--images", required=True, help="directory of *.jpg request bodies")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--requests", type=int, help="stop after this many (soak) instead")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--body", default="raw", help="raw, multipart:FIELD or v2:INPUT")
    parser.add_argument(
        "--shared-pool",
        action="store_true",
        help="one AsyncClient for all workers (default: one per worker, see measure())",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    result = asyncio.run(measure(parse_args(argv)))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
