"""Jobs per second with two `argus worker` processes against the synchronous REST API, on the
same images, the same models and the same machine, both as real processes.

1. Sync: `argus serve` answers N ``POST /v1/questions/labels`` sent 16 at a time.
2. Jobs: two `argus worker` processes (models loaded, each one lane of one runtime thread: the
   two fill the cores, as `argus serve --workers 2` would) answer N jobs
   submitted in one burst; the clock runs from the first submit to the last job done.

Prints both rates and the ratio jobs/sync. The queue's own cost (claims, leases, the answer
and prediction record written in one transaction per job) is what the ratio shows.

    .venv/bin/python benchmarks/bench_jobs.py [--images 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy import func, select

from argus.db.engine import make_engine, migrate
from argus.db.schema import Job
from argus.jobs import open_queue
from argus.jobs.types import utcnow
from argus.models.packages import PackageStore
from argus.models.pull import pull
from argus.models.registry import ModelRegistry
from argus.settings import Settings

ARGUS = str(Path(sys.executable).with_name("argus"))


def share_of_cores(processes: int) -> dict[str, str]:
    """Settings that give each of ``processes`` worker processes its share of the cores: one
    lane per share, one runtime thread per lane, and no all-core session for lone jobs (the
    processes do not share a request count the way `argus serve --workers` does)."""
    lanes = max(1, (os.cpu_count() or 2) // processes)
    return {"ARGUS_LANES": str(lanes), "ARGUS_INTRA_OP_THREADS": "1", "ARGUS_LONE_THREADS": "1"}


def images(count: int) -> list[bytes]:
    """Distinct 320x240 JPEGs cut from real sample photos (scikit-image, scikit-learn)."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    photos = [
        skimage.data.coffee(),
        skimage.data.chelsea(),
        skimage.data.astronaut(),
        load_sample_image("china.jpg"),
        load_sample_image("flower.jpg"),
    ]
    sources = [Image.fromarray(p) for p in photos]
    rng = random.Random(1)
    out = []
    for _ in range(count):
        img = rng.choice(sources)
        w, h = img.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        buf = io.BytesIO()
        img.crop((x, y, x + cw, y + ch)).resize((320, 240)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def argus_cmd(command: str) -> list[str]:
    listed = subprocess.run([ARGUS, "--help"], capture_output=True, text=True).stdout
    if f" {command} " in listed:
        return [ARGUS, command]
    return [sys.executable, "-m", f"argus.cli.{command}"]


def bench_sync(env: dict[str, str], data: list[bytes], concurrency: int) -> float:
    port = free_port()
    log = open(Path(env["ARGUS_HOME"]) / "serve.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [ARGUS, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("argus serve did not become ready")
            time.sleep(0.2)

        async def run() -> float:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                for d in data[:20]:  # warm-up
                    (await client.post("/v1/questions/labels", content=d)).raise_for_status()
                queue: asyncio.Queue[bytes] = asyncio.Queue()
                for d in data:
                    queue.put_nowait(d)

                async def sender() -> None:
                    while not queue.empty():
                        d = queue.get_nowait()
                        (await client.post("/v1/questions/labels", content=d)).raise_for_status()

                start = time.perf_counter()
                await asyncio.gather(*(sender() for _ in range(concurrency)))
                return len(data) / (time.perf_counter() - start)

        return asyncio.run(run())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        log.close()


def bench_jobs(
    env: dict[str, str], settings: Settings, data: list[bytes], workers: int, concurrency: int
) -> tuple[float, float]:
    home = Path(env["ARGUS_HOME"])
    logs = [home / f"worker{i}.log" for i in range(workers)]
    procs = [
        subprocess.Popen(
            [*argus_cmd("worker"), "--concurrency", str(concurrency), "--log-level", "info"],
            env={**env, **share_of_cores(workers)},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    queue = open_queue(settings)
    try:
        deadline = time.monotonic() + 120
        while not all("taking" in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("workers did not start:\n" + logs[0].read_text())
            time.sleep(0.2)
        for d in data[:20]:  # warm-up, like the sync run
            queue.submit("labels", d)
        while queue.counts().get("done", 0) < 20:
            time.sleep(0.05)
        start, started_at = time.perf_counter(), utcnow()
        # Submitted by 8 threads, as several API processes would: one submitter spends most
        # of its time waiting on each image's fsync, and fed the workers slower than they
        # answer.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda d: queue.submit("labels", d), data))
        submitted = time.perf_counter() - start
        # Polled seldom (a count every 10 ms was a query against the workers' database 100
        # times a second, on their cores); the end is the last job's own finishing time.
        while queue.counts().get("done", 0) < len(data) + 20:
            time.sleep(0.2)
        with queue.engine.connect() as conn:
            last = conn.execute(select(func.max(Job.finished_at))).scalar_one()
        last = last if last.tzinfo else last.replace(tzinfo=UTC)  # SQLite: naive UTC
        elapsed = (last - started_at).total_seconds()
        bad = {k: v for k, v in queue.counts().items() if k != "done"}
        if bad:
            raise RuntimeError(f"jobs did not all end done: {bad}")
        return len(data) / elapsed, len(data) / submitted
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        queue.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp home")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="argus-bench-jobs-"))
    try:
        settings = Settings(home=home, database_url=args.database_url)
        engine = make_engine(settings.db_url)
        migrate(engine)
        pull(ModelRegistry(engine, PackageStore(settings.packages_dir)), settings.cache_dir)
        engine.dispose()
        env = {**os.environ, "ARGUS_HOME": str(home)}
        if args.database_url:
            env["ARGUS_DATABASE_URL"] = args.database_url
        data = images(args.images)
        sync = bench_sync(env, data, args.concurrency)
        jobs, submit = bench_jobs(env, settings, data, args.workers, args.concurrency)
        backend = make_engine(settings.db_url).dialect.name
        print(
            f"images: {len(data)} (320x240 JPEG), question: labels (efficientnet-lite0), "
            f"queue on {backend}, {os.cpu_count()} cores"
        )
        print(f"sync API (argus serve, {args.concurrency} in flight): {sync:8.1f} images/s")
        print(
            f"jobs ({args.workers} argus worker processes):          {jobs:8.1f} jobs/s "
            f"(submitted at {submit:.0f} jobs/s)"
        )
        print(f"ratio jobs/sync: {jobs / sync:.2f}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
