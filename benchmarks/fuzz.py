"""Malformed images against a real `argus serve`, over REST and gRPC (issue 15).

    python benchmarks/fuzz.py [--count 10000] [--home DIR]       # make fuzz
    python benchmarks/fuzz.py --costly [--runs 5]                # cost of the worst images

The fuzz run mutates real encodings (JPEG baseline/progressive/with restart markers, PNG in
several modes, WebP, GIF, BMP): truncations, truncations closed with an end marker, rewritten
dimensions, flipped and inserted bytes, splices, random bytes. Every answer must be a success
or a 4xx (gRPC INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, FAILED_PRECONDITION); it
prints tried, 2xx, 4xx, 5xx (must be 0), crashes (0) and the server's peak RSS growth over its
RSS after a warm-up (< 1 GB). ``--costly`` sends the images that used to cost seconds and
gigabytes to `faces` one at a time and prints, per image, the answer, the time, the peak RSS
added (the kernel's high-water mark, reset before each request) and the RSS left after.
The server needs the default models (``argus models pull``) in ``--home``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import grpc
import httpx
import numpy as np
from PIL import Image

from argus.generated.v1 import vision_pb2 as v1
from argus.generated.v1 import vision_pb2_grpc

GRPC_4XX = {"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
            "OUT_OF_RANGE"}


# -- the server ---------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, home: Path | None) -> None:
        self.port, self.grpc_port = free_port(), free_port()
        env = dict(os.environ)
        if home is not None:
            env["ARGUS_HOME"] = str(home)
        argus = Path(sys.executable).with_name("argus")
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the server
        self.proc = subprocess.Popen(
            [str(argus), "serve", "--port", str(self.port), "--grpc-port", str(self.grpc_port),
             "--preload"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"argus serve exited:\n{self.log.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("argus serve did not become ready in 120 s")
        self.http = httpx.Client(base_url=self.url, timeout=60)
        options = [("grpc.max_send_message_length", 64 << 20),
                   ("grpc.max_receive_message_length", 64 << 20)]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}", options=options)
        self.stub = vision_pb2_grpc.VisionStub(self.channel)

    def status_field(self, name: str) -> int:
        """VmRSS / VmHWM of the server in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) // 1024
        return 0

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def rest(self, question: str, data: bytes) -> tuple[int, str]:
        reply = self.http.post(f"/v1/questions/{question}", content=data,
                               headers={"content-type": "application/octet-stream"})
        return reply.status_code, reply.text[:200]

    def grpc_ask(self, question: str, data: bytes) -> tuple[int, str]:
        def stream() -> Any:
            yield v1.ImageChunk(header=v1.AskHeader(question=question, request_id="fuzz"))
            for start in range(0, len(data), 256 * 1024):
                yield v1.ImageChunk(data=data[start : start + 256 * 1024])
            if not data:
                yield v1.ImageChunk(data=b"")

        try:
            reply = self.stub.Ask(stream(), timeout=60)
        except grpc.RpcError as exc:
            code = exc.code().name
            return (400 if code in GRPC_4XX else 500), f"{code}: {exc.details()}"
        if reply.HasField("error"):
            return 400, str(reply.error)
        return 200, ""

    def close(self) -> None:
        self.channel.close()
        self.http.close()
        self.proc.terminate()
        self.log.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- inputs -------------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def seeds(rng: np.random.Generator) -> list[bytes]:
    """Real encodings of a small synthetic picture (gradient, shapes, noise)."""
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([x * 2, y * 2, (x + y) % 256], axis=2).astype(np.uint8)
    cv2.circle(rgb, (64, 48), 20, (250, 200, 150), -1)
    rgb = np.clip(rgb + rng.integers(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb)
    _, rst = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    wide = np.asarray(img.convert("L")).astype(np.uint16) * 257
    rgba = img.convert("RGBA")
    return [
        encode(img, "JPEG"), encode(img, "JPEG", progressive=True), rst.tobytes(),
        encode(img.convert("L"), "JPEG"), encode(img.convert("CMYK"), "JPEG"),
        encode(img, "PNG"), encode(img.convert("L"), "PNG"), encode(rgba, "PNG"),
        encode(img.convert("P"), "PNG"), encode(Image.fromarray(wide), "PNG"),
        encode(img, "WEBP"), encode(rgba, "WEBP", lossless=True),
        encode(img, "GIF"), encode(img, "BMP"), encode(img.convert("1"), "BMP"),
    ]


def rewrite_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    if data[:2] == b"\xff\xd8":
        for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
            at = out.find(marker)
            if at >= 0:
                struct.pack_into(">HH", out, at + 5, height, width)
                break
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        struct.pack_into(">II", out, 16, width, height)
        struct.pack_into(">I", out, 29, zlib.crc32(bytes(out[12:29])))  # a valid CRC
    elif data[:3] == b"GIF":
        struct.pack_into("<HH", out, 6, width & 0xFFFF, height & 0xFFFF)
    elif data[:2] == b"BM":
        struct.pack_into("<ii", out, 18, width, height)
    elif data[8:12] == b"WEBP" and len(out) > 30:
        struct.pack_into("<HH", out, 26, width & 0x3FFF, height & 0x3FFF)
    return bytes(out)


def mutate(rng: random.Random, pool: list[bytes]) -> bytes:
    data = rng.choice(pool)
    kind = rng.randrange(8)
    if kind == 0:  # truncated
        return data[: rng.randrange(len(data))]
    if kind == 1:  # truncated, then closed with the end marker
        return data[: rng.randrange(len(data))] + b"\xff\xd9"
    if kind == 2:  # dimensions rewritten
        side = rng.choice([1, 7, 255, 4096, 7071, 10_000, 65_535])
        return rewrite_size(data, side, rng.choice([side, 1, 3000]))
    if kind == 3:  # flipped bytes
        out = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if kind == 4:  # inserted bytes
        at = rng.randrange(len(data))
        return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]
    if kind == 5:  # a splice of two encodings
        other = rng.choice(pool)
        return data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]
    if kind == 6:  # the header, then random bytes
        return data[: rng.randint(2, 64)] + rng.randbytes(rng.randint(0, 2048))
    return rng.randbytes(rng.randint(0, 512))


def costly() -> dict[str, bytes]:
    """The images issue 15 measured, and the largest each format may still be."""
    small = encode(Image.new("RGB", (16, 16), (120, 90, 60)), "JPEG")
    noise = np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), np.uint8)
    big = cv2.resize(noise, (7000, 7000), interpolation=cv2.INTER_LINEAR)
    _, big_jpeg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 70])
    smooth = cv2.resize(noise[:60, :60], (5600, 5600), interpolation=cv2.INTER_CUBIC)
    return {
        "jpeg 16x16 claiming 7071x7071": rewrite_size(small, 7071, 7071),
        "png 7000x7000 zeros": encode(Image.fromarray(np.zeros((7000, 7000), np.uint8)), "PNG"),
        "jpeg 7000x7000 noise (49 MP)": big_jpeg.tobytes(),
        "png 5600x5600 RGB (31 MP)": encode(Image.fromarray(smooth), "PNG"),
        "png 3264x3264 RGB (10.6 MP: the largest PNG)": encode(
            Image.fromarray(smooth[:3264, :3264]), "PNG"),
        "png 3264x3264 RGBA": encode(Image.fromarray(smooth[:3264, :3264]).convert("RGBA"), "PNG"),
        "png 3264x3264 16-bit grey": encode(
            Image.fromarray(smooth[:3264, :3264, 0].astype(np.uint16) * 257), "PNG"),
    }


# -- runs ---------------------------------------------------------------------------------

def run_fuzz(server: Server, count: int, seed: int, workers: int) -> dict[str, Any]:
    rng = random.Random(seed)
    pool = seeds(np.random.default_rng(seed))
    for data in pool[:3]:  # warm-up: the models loaded and answering
        server.rest("faces", data)
        server.rest("labels", data)
    baseline = server.status_field("VmRSS")
    server.reset_peak()
    inputs = [(mutate(rng, pool), rng.choice(["faces", "labels"]), i % 2) for i in range(count)]
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    slowest = 0.0

    def send(item: tuple[bytes, str, int]) -> tuple[int, str, float]:
        data, question, over_grpc = item
        started = time.perf_counter()
        status, text = (server.grpc_ask if over_grpc else server.rest)(question, data)
        return status, text, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool_:
        for status, text, seconds in pool_.map(send, inputs):
            bucket = f"{status // 100}xx"
            counts[bucket] += 1
            examples.setdefault(bucket, text)
            slowest = max(slowest, seconds)
    crashed = server.proc.poll() is not None
    peak = server.status_field("VmHWM") if not crashed else 0
    return {
        "tried": count,
        "2xx": counts["2xx"],
        "4xx": counts["4xx"],
        "5xx": counts["5xx"],
        "crashes": int(crashed),
        "rss_baseline_mb": baseline,
        "peak_rss_growth_mb": peak - baseline,
        "rss_after_mb": server.status_field("VmRSS") if not crashed else 0,
        "slowest_input_s": round(slowest, 2),
        "seconds": round(time.perf_counter() - started, 1),
        "example_5xx": examples.get("5xx", ""),
    }


def run_costly(server: Server, runs: int) -> None:
    images = costly()
    server.rest("faces", encode(Image.new("RGB", (64, 64)), "JPEG"))
    baseline = server.status_field("VmRSS")
    print(f"baseline RSS {baseline} MB")
    for name, image in images.items():
        for run in range(runs):
            data = image + b"run %d" % run  # bytes after the end: a new digest, no cached answer
            server.reset_peak()
            before = server.status_field("VmRSS")
            started = time.perf_counter()
            status, text = server.rest("faces", data)
            seconds = time.perf_counter() - started
            peak = server.status_field("VmHWM")
            time.sleep(1.0)  # the question's memory is handed back 0.2 s after it answers
            after = server.status_field("VmRSS")
            print(json.dumps({
                "image": name, "bytes": len(data), "status": status,
                "seconds": round(seconds, 2), "peak_added_mb": peak - before,
                "after_minus_baseline_mb": after - baseline,
                "reason": text[:120] if status >= 400 else "",
            }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--costly", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = Server(args.home)
    try:
        if args.costly:
            run_costly(server, args.runs)
            return
        result = run_fuzz(server, args.count, args.seed, args.workers)
        print(json.dumps(result, indent=2))
        if result["5xx"] or result["crashes"] or result["peak_rss_growth_mb"] >= 1024:
            raise SystemExit("fuzz: 5xx answers, a crash or peak RSS growth of 1 GB or more")
    finally:
        server.close()


if __name__ == "__main__":
    main()
