"""Jobs per second with two `argus worker` processes against the synchronous REST API, on the
same kind of images, the same models and the same machine, all as real processes.

`argus serve` and two `argus worker` processes (models loaded, each one lane of one runtime
thread: the two fill the cores, as `argus serve --workers 2` would) start once and stay up; then
rounds alternate, so both see the same machine load:

1. Sync: N ``POST /v1/questions/labels`` sent 16 at a time.
2. Jobs: N jobs submitted by 8 threads; the clock runs from the first submit to the last job's
   own finishing time.

Every round has images of its own (answers are cached by image digest). Prints each round's
rates and the ratio jobs/sync, then the range over rounds. The queue's own cost (claims, leases,
the answer and prediction record written with the job) is what the ratio shows.

    .venv/bin/python benchmarks/bench_jobs.py [--images 300] [--rounds 3] [--database-url URL]
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
from argus.jobs import JobQueue, open_queue
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


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("argus serve did not become ready")
        time.sleep(0.2)


def sync_round(url: str, data: list[bytes], concurrency: int) -> float:
    """Images per second answered over REST, ``concurrency`` requests in flight."""

    async def run() -> float:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
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


def jobs_round(queue: JobQueue, data: list[bytes]) -> tuple[float, float]:
    """(jobs per second answered, jobs per second submitted) for ``data`` as jobs."""
    done_before = queue.counts().get("done", 0)
    start, started_at = time.perf_counter(), utcnow()
    # Submitted by 8 threads, as several API processes would: one submitter spends most of
    # its time waiting on each image's fsync, and fed the workers slower than they answer.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda d: queue.submit("labels", d), data))
    submitted = time.perf_counter() - start
    # Polled seldom (a count every 10 ms was a query against the workers' database 100
    # times a second, on their cores); the end is the last job's own finishing time.
    while queue.counts().get("done", 0) < done_before + len(data):
        time.sleep(0.2)
    with queue.engine.connect() as conn:
        last = conn.execute(select(func.max(Job.finished_at))).scalar_one()
    last = last if last.tzinfo else last.replace(tzinfo=UTC)  # SQLite: naive UTC
    bad = {k: v for k, v in queue.counts().items() if k != "done"}
    if bad:
        raise RuntimeError(f"jobs did not all end done: {bad}")
    return len(data) / (last - started_at).total_seconds(), len(data) / submitted


def start_workers(env: dict[str, str], workers: int, concurrency: int,
                  queue: JobQueue) -> list[subprocess.Popen[bytes]]:
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
    deadline = time.monotonic() + 120
    while not all("taking" in log.read_text() for log in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("workers did not start:\n" + logs[0].read_text())
        time.sleep(0.2)
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="images per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp home")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="argus-bench-jobs-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(home=home, database_url=args.database_url)
        engine = make_engine(settings.db_url)
        migrate(engine)
        pull(ModelRegistry(engine, PackageStore(settings.packages_dir)), settings.cache_dir)
        engine.dispose()
        env = {**os.environ, "ARGUS_HOME": str(home)}
        if args.database_url:
            env["ARGUS_DATABASE_URL"] = args.database_url
        n = args.images
        data = images((2 * args.rounds + 1) * n + 20)
        warm, data = data[:20], data[20:]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (home / "serve.log").open("w")
        server = subprocess.Popen(
            [ARGUS, "serve", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        procs.append(server)
        wait_ready(url, server)
        queue = open_queue(settings)
        procs += start_workers(env, args.workers, args.concurrency, queue)
        # Warm-up of both sides (first calls allocate), unmeasured.
        sync_round(url, warm, args.concurrency)
        jobs_round(queue, data[-n:])
        backend = queue.engine.dialect.name
        print(
            f"images: {n} a round and side (320x240 JPEG), question: labels "
            f"(efficientnet-lite0), queue on {backend}, {os.cpu_count()} cores, "
            f"{args.rounds} rounds, sync and jobs taking turns"
        )
        print(f"{'round':>5}  {'sync img/s':>10}  {'jobs/s':>8}  {'submitted/s':>11}  {'ratio':>6}")
        ratios, syncs, jobs = [], [], []
        for r in range(args.rounds):
            sync = sync_round(url, data[2 * r * n : (2 * r + 1) * n], args.concurrency)
            done, submit = jobs_round(queue, data[(2 * r + 1) * n : (2 * r + 2) * n])
            syncs.append(sync)
            jobs.append(done)
            ratios.append(done / sync)
            print(f"{r + 1:>5}  {sync:>10.1f}  {done:>8.1f}  {submit:>11.0f}  {done / sync:>6.2f}")
        print(
            f"sync {min(syncs):.1f}-{max(syncs):.1f} images/s, jobs ({args.workers} argus worker "
            f"processes) {min(jobs):.1f}-{max(jobs):.1f} jobs/s; "
            f"ratio jobs/sync {min(ratios):.2f}-{max(ratios):.2f} over {args.rounds} rounds"
        )
        queue.engine.dispose()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
