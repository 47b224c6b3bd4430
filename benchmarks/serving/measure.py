"""Driving one running server: a sanity pass, one load level, RSS snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from serving.loadgen import MEASURE_END, MEASURE_START, encode_bodies
from serving.servers import RunningServer

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"


def stolen_seconds() -> float:
    """CPU seconds the hypervisor gave other guests instead of this machine, summed over its
    cores since boot (Linux's ``steal`` in /proc/stat; 0 where there is none). A shared VM's
    throughput falls with it, the ceiling's and a server's alike, but not always in the same
    window: a level measured while much was stolen says little."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def top1(answer: dict[str, Any]) -> str:
    """The best label of an Argus answer (``answer.labels``), a peer's (``labels``) or a V2
    response's (a JSON string holding ``labels``)."""
    if "outputs" in answer:
        answer = json.loads(answer["outputs"][0]["data"][0])
    labels = answer.get("answer", answer)["labels"]
    return str(labels[0]["label"])


def sanity(server: RunningServer, images: list[Path], expected: dict[str, str]) -> dict[str, Any]:
    """One request per image: every answer must be 200 with the ceiling's top-1 label."""
    bodies, content_type = encode_bodies([p.read_bytes() for p in images], server.spec.body_format)
    got: dict[str, str] = {}
    with httpx.Client(timeout=60.0, headers={"content-type": content_type}) as client:
        for path, body in zip(images, bodies, strict=True):
            response = client.post(server.predict_url, content=body.render())
            if response.status_code != 200:
                raise RuntimeError(
                    f"{server.spec.name} answered {response.status_code} for {path.name}: "
                    f"{response.text[:300]}"
                )
            got[path.stem] = top1(response.json())
    mismatches = {k: (v, expected[k]) for k, v in got.items() if expected.get(k) != v}
    return {"top1": got, "mismatches": mismatches}


def run_loadgen(
    server: RunningServer,
    images_dir: Path,
    concurrency: int,
    duration: float,
    warmup: float,
    requests: int | None = None,
) -> dict[str, Any]:
    """One load level in a separate process; adds the server's CPU over the measured phase."""
    command = [
        sys.executable,
        str(LOADGEN),
        f"--url={server.predict_url}",
        f"--images={images_dir}",
        f"--concurrency={concurrency}",
        f"--duration={duration}",
        f"--warmup={warmup}",
    ]
    if requests is not None:
        command.append(f"--requests={requests}")
    command.append(f"--body={server.spec.body_format}")
    result: dict[str, Any] | None = None
    cpu0 = cpu1 = t0 = t1 = steal0 = steal1 = 0.0
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout or ():
            line = line.strip()
            if line == MEASURE_START:
                cpu0, t0, steal0 = server.cpu_seconds(), time.perf_counter(), stolen_seconds()
            elif line == MEASURE_END:
                cpu1, t1, steal1 = server.cpu_seconds(), time.perf_counter(), stolen_seconds()
            elif line.startswith("{"):
                result = json.loads(line)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    if server.proc.poll() is not None:
        raise RuntimeError(
            f"{server.spec.name} died under load (exit {server.proc.returncode}):\n"
            f"{server.log_tail()}"
        )
    result["server_cpu_cores"] = round((cpu1 - cpu0) / (t1 - t0), 3) if t1 > t0 else 0.0
    result["stolen_cores"] = round((steal1 - steal0) / (t1 - t0), 3) if t1 > t0 else 0.0
    return result


def memory_line(rows: list[dict[str, Any]]) -> str:
    total = sum(r["rss_mb"] for r in rows)
    parts = ", ".join(f"{r['rss_mb']:.0f} ({_short(r['cmd'])})" for r in rows)
    return f"{total:.0f} MB in {len(rows)} process(es): {parts}"


def _short(cmd: str) -> str:
    words = cmd.split()
    named = [w.rsplit("/", 1)[-1] for w in words[:3]]
    return " ".join(named)[:50]
