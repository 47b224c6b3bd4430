"""A full model queue answers 503 with Retry-After at once; the server keeps serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.conftest import start_server


def test_tiny_queue_bound_sheds_with_retry_after(pulled_home: Path,
                                                 photos: dict[str, bytes]) -> None:
    server = start_server(pulled_home, env={"ARGUS_MAX_QUEUE": "1", "ARGUS_MAX_BATCH_SIZE": "1"})
    try:
        server.wait_ready()

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                # distinct bytes (a tag after the JPEG end marker) so no answer comes from cache
                bodies = [photos["coffee"] + f"#{i}".encode() for i in range(40)]
                return list(await asyncio.gather(*(
                    client.post(f"{server.url}/v1/questions/labels", content=b)
                    for b in bodies
                )))

        responses = asyncio.run(burst())
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503}, statuses
        shed = [r for r in responses if r.status_code == 503]
        assert shed and statuses.count(200) >= 1
        for r in shed:
            assert int(r.headers["retry-after"]) >= 1
            assert "retry" in r.json()["error"]
        after = httpx.post(f"{server.url}/v1/questions/labels", content=photos["china"],
                           timeout=30)
        assert after.status_code == 200
        assert after.json()["answer"]["labels"][0]["label"] == "palace"
    finally:
        server.stop()
