"""``/v1/jobs`` in process: submit, follow, list, cancel; a worker answers; callbacks arrive."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from argus.http.jobs import router as jobs_router
from argus.jobs import open_queue
from argus.jobs.queue import JobQueue
from argus.jobs.types import JobPolicy
from argus.jobs.worker import Worker
from argus.server import in_process_app, local_core
from argus.settings import Settings


class Client:
    """The app in process over httpx's ASGI transport (each call on its own event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.app = in_process_app(settings.model_copy(update={"preload": False}))
        self.app.include_router(jobs_router)
        queue = open_queue(settings, self.app.state.core.engine)
        queue.policy = JobPolicy(callback_hosts=("127.0.0.1",))
        self.app.state.jobs = queue

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://argus") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)


@pytest.fixture
def client(tiny_settings: Settings) -> Iterator[Client]:
    c = Client(tiny_settings)
    try:
        yield c
    finally:
        asyncio.run(c.app.state.core.close())


def drain(settings: Settings, policy: JobPolicy) -> dict[str, Any]:
    """Run a real worker in process until the queue has nothing left to run."""

    async def run() -> dict[str, Any]:
        core = local_core(settings)
        queue = open_queue(settings, core.engine)
        queue.policy = policy
        worker = Worker(core, queue, concurrency=4, lease_seconds=10)
        task = asyncio.create_task(worker.run())
        try:
            while queue.counts().get("queued", 0) or queue.counts().get("running", 0):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # let the callback go out
        finally:
            worker.stop()
            stats = await task
            await core.close()
        return stats.to_dict()

    return asyncio.run(run())


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_submit_follow_and_callback(
    client: Client, tiny_settings: Settings, photos: dict[str, bytes]
) -> None:
    Hook.received = []
    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hook.server_address[1]}/done"
        raw = client.post("/v1/jobs", params={"question": "tiny", "top_k": "2",
                                              "callback_url": url}, content=photos["coffee"])
        assert raw.status_code == 202, raw.text
        job = raw.json()
        assert job["status"] == "queued" and job["created"] is True
        assert raw.headers["location"] == f"/v1/jobs/{job['id']}"
        form = client.post(
            "/v1/jobs",
            files={"image": ("c.jpg", photos["chelsea"], "image/jpeg")},
            data={"question": "tiny", "priority": "3", "idempotency_key": "k1"},
        )
        assert form.status_code == 202, form.text
        again = client.post(
            "/v1/jobs", files={"image": ("c.jpg", photos["chelsea"], "image/jpeg")},
            data={"question": "tiny", "idempotency_key": "k1", "priority": "3"},
        )
        assert again.json()["id"] == form.json()["id"] and again.json()["created"] is False
        listed = client.get("/v1/jobs", params={"status": "queued"}).json()
        assert {j["id"] for j in listed["jobs"]} == {job["id"], form.json()["id"]}

        stats = drain(tiny_settings, JobPolicy(callback_hosts=("127.0.0.1",)))
        assert stats["done"] == 2
        done = client.get(f"/v1/jobs/{job['id']}").json()
        assert done["status"] == "done" and done["attempts"] == 1
        assert len(done["answer"]["answer"]["labels"]) == 2
        assert done["answer"]["models"][0]["name"] == "tiny"
        assert [h["id"] for h in Hook.received] == [job["id"]]
        assert Hook.received[0]["answer"] == done["answer"]
        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 409
    finally:
        hook.shutdown()


def test_bad_requests_get_reasons(client: Client, photos: dict[str, bytes]) -> None:
    def post(content: bytes, **params: str) -> tuple[int, str]:
        r = client.post("/v1/jobs", params=params, content=content)
        return r.status_code, r.json()["error"]

    assert post(photos["coffee"]) == (
        400, "say which question to ask: the 'question' field or query parameter"
    )
    code, reason = post(photos["coffee"], question="nope")
    assert code == 404 and "nope" in reason
    code, reason = post(b"hello", question="tiny")
    assert code == 415 and "not an image" in reason
    code, reason = post(b"", question="tiny")
    assert code == 400 and "empty" in reason
    code, reason = post(photos["coffee"], question="tiny", callback_url="http://evil.example/")
    assert code == 403 and "not allowed" in reason
    for unreadable in ("http://[", "http://127.0.0.1:99999/"):  # were 500s (ValueError)
        code, reason = post(photos["coffee"], question="tiny", callback_url=unreadable)
        assert code == 400 and "callback_url must be an http or https URL" in reason
    code, reason = post(photos["coffee"], question="tiny", idempotency_key="k\x00")
    assert code == 400 and "idempotency_key holds a NUL" in reason  # PostgreSQL: was a 500
    code, reason = post(photos["coffee"], question="tiny", priority="high")
    assert code == 400 and "priority" in reason
    assert client.get("/v1/jobs/job_nope").status_code == 404
    assert client.get("/v1/jobs", params={"status": "asleep"}).status_code == 400


def test_jobs_carry_every_option_the_image_api_takes(
    client: Client, photos: dict[str, bytes]
) -> None:
    raw = client.post("/v1/jobs", params={"question": "tiny", "top_k": "2", "conf": "0.4",
                                          "crops": "true", "alias": "production"},
                      content=photos["coffee"])
    assert raw.status_code == 202, raw.text
    assert raw.json()["options"] == {"top_k": 2, "conf": 0.4, "crops": True,
                                     "alias": "production"}
    form = client.post("/v1/jobs", files={"image": ("c.jpg", photos["chelsea"], "image/jpeg")},
                       data={"question": "tiny", "conf": "2"})
    assert form.status_code == 400 and "conf must be between 0 and 1" in form.json()["error"]


def test_cancel_a_queued_job(client: Client, photos: dict[str, bytes]) -> None:
    job = client.post("/v1/jobs", params={"question": "tiny"}, content=photos["rocket"]).json()
    cancelled = client.delete(f"/v1/jobs/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    queue: JobQueue = client.app.state.jobs  # type: ignore[attr-defined]
    assert queue.claim("w", 5) == []
