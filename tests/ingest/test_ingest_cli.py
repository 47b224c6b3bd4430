"""`argus ingest --once` from a folder, locally and through a real gateway; sinks."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from argus.errors import BadInput, ConfigError
from argus.ingest.sinks import DirSink, open_sink, safe_name
from argus.settings import Settings
from tests.cli_commands import argus
from tests.conftest import start_server
from tests.ingest.conftest import env_for, small_photos


def run_once(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argus("ingest"), *args, "--once", "--settle-seconds", "0"],
        env=env_for(settings), capture_output=True, text=True, timeout=120,
    )


def test_once_then_again_skips_and_shows_progress(
    ingest_settings: Settings, photos: dict[str, bytes], tmp_path: Path
) -> None:
    incoming, out = tmp_path / "in", tmp_path / "out"
    (incoming / "sub").mkdir(parents=True)
    files = small_photos(photos, 6)
    for name, data in files[:3]:
        (incoming / name).write_bytes(data)
    for name, data in files[3:]:
        (incoming / "sub" / name).write_bytes(data)
    (incoming / ".hidden.jpg").write_bytes(b"ignored")
    (incoming / "half.jpg.part").write_bytes(b"ignored")
    (incoming / "readme.txt").write_text("no picture here")
    args = ["--source", f"dir:{incoming}", "--question", "tiny", "--sink", f"dir:{out}",
            "--top-k", "2"]
    first = run_once(ingest_settings, *args)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["done"], summary["quarantined"]) == (6, 1)
    assert "quarantined readme.txt" in first.stderr  # the progress display names it
    meta = json.loads((out / "sub" / f"{files[4][0]}.json").read_text())
    assert len(meta["answer"]["labels"]) == 2 and meta["file"] == f"sub/{files[4][0]}"
    assert (out / "quarantine" / "readme.txt.reason.txt").exists()
    assert not (out / ".hidden.jpg").exists() and (incoming / ".hidden.jpg").exists()

    again = run_once(ingest_settings, *args, "--json-log", "--remove-source")
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert sorted(e["name"] for e in events if e["event"] == "skipped") == sorted(
        [n for n, _ in files[:3]] + [f"sub/{n}" for n, _ in files[3:]]
    )
    assert events[-1]["event"] == "stopped" and events[-1]["done"] == 0
    assert sorted(p.name for p in incoming.rglob("*")) == [".hidden.jpg", "half.jpg.part", "sub"]


def test_through_a_gateway(ingest_settings: Settings, photos: dict[str, bytes],
                           tmp_path: Path) -> None:
    server = start_server(ingest_settings.home)
    try:
        server.wait_ready()
        incoming, out = tmp_path / "in", tmp_path / "out"
        incoming.mkdir()
        for name, data in small_photos(photos, 4):
            (incoming / name).write_bytes(data)
        (incoming / "cut.jpg").write_bytes(photos["coffee"][:2000])
        done = run_once(ingest_settings, "--source", f"dir:{incoming}", "--question", "tiny",
                        "--sink", f"dir:{out}", "--gateway", server.url, "--json-log")
        assert done.returncode == 0, done.stderr
        last = json.loads(done.stdout.splitlines()[-1])
        assert (last["done"], last["quarantined"]) == (4, 1)
        reason = (out / "quarantine" / "cut.jpg.reason.txt").read_text()
        assert "truncated" in reason.lower()
        refused = run_once(ingest_settings, "--source", f"dir:{incoming}", "--question",
                           "nope", "--sink", f"dir:{out}", "--gateway", server.url)
        assert refused.returncode != 0 and "nope" in refused.stderr
    finally:
        server.stop()


def test_bad_specs_are_refused(ingest_settings: Settings, tmp_path: Path) -> None:
    unknown = run_once(ingest_settings, "--source", "ftp:x", "--question", "tiny",
                       "--sink", f"dir:{tmp_path}")
    assert unknown.returncode == 1 and "unknown source" in unknown.stderr
    missing = run_once(ingest_settings, "--source", f"dir:{tmp_path / 'nope'}", "--question",
                       "tiny", "--sink", f"dir:{tmp_path}")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    with pytest.raises(ConfigError, match="unknown sink"):
        open_sink("ftp://x")


def test_sink_names_stay_inside(tmp_path: Path) -> None:
    sink = DirSink(tmp_path / "out")
    for bad in ("../escape.jpg", "", "a/../../b"):
        with pytest.raises(BadInput):
            safe_name(bad)
    assert safe_name("/abs/x.jpg") == "abs/x.jpg"
    sink.write("quarantine/x.jpg", b"img", {"a": 1})  # cannot pose as quarantined input
    assert (tmp_path / "out" / "_quarantine" / "x.jpg").read_bytes() == b"img"


def test_s3_sink(tmp_path: Path) -> None:
    endpoint = os.environ.get("ARGUS_TEST_S3_URL")
    if not endpoint:
        pytest.skip("ARGUS_TEST_S3_URL is not set: no S3-compatible server to test against")
    boto3 = pytest.importorskip("boto3", reason="the s3 extra (boto3) is not installed")
    bucket = f"argus-test-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    try:
        sink = open_sink(f"s3://{bucket}/run1", endpoint)
        sink.write("a/b.jpg", b"image", {"answer": 1})
        sink.quarantine("c.jpg", b"bad", "not an image")
        got = client.get_object(Bucket=bucket, Key="run1/a/b.jpg.json")["Body"].read()
        assert json.loads(got) == {"answer": 1}
        reason = client.get_object(Bucket=bucket, Key="run1/quarantine/c.jpg.reason.txt")
        assert reason["Body"].read() == b"not an image\n"
    finally:
        for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
