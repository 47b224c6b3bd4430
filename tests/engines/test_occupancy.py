"""A lone request runs on every core; under load each call keeps to its share. The count of
requests is shared by the worker processes of one server."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np

from argus.engines import AdaptiveSession, RuntimeChoice, make_session
from argus.engines.occupancy import OCCUPANCY, Occupancy
from tests.tiny_model import tiny_onnx


def _count_in_child(slots: object, entered: object, release: object) -> None:
    occupancy = Occupancy()
    occupancy.share(slots, 1)
    with occupancy.running():
        entered.set()  # type: ignore[attr-defined]
        release.wait(10)  # type: ignore[attr-defined]


def test_the_count_is_shared_between_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    slots = ctx.Array("i", 2, lock=False)
    entered, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_count_in_child, args=(slots, entered, release))
    child.start()
    here = Occupancy()
    here.share(slots, 0)
    try:
        assert entered.wait(30)
        assert here.now == 1  # the other process's request
        with here.running() as count:
            assert count == 2
            assert list(slots) == [1, 1]
        assert here.now == 1
    finally:
        release.set()
        child.join(30)
    assert here.now == 0 and list(slots) == [0, 0]


def test_a_lone_call_takes_the_wide_session_and_a_busy_one_its_share(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    tiny_onnx(path)
    session = make_session(path, 1, RuntimeChoice(lone_threads=2))
    assert isinstance(session, AdaptiveSession)
    x = np.ones((1, 3, 32, 32), dtype=np.float32)
    x[:, 0] = 3.0  # reddest

    with OCCUPANCY.running():  # this request alone
        lone = session.run(None, {"x": x})[0]
    assert session.lone_calls == 1
    with OCCUPANCY.running(), OCCUPANCY.running():  # another request is in the server
        shared = session.run(None, {"x": x})[0]
    assert session.lone_calls == 1
    assert np.array_equal(lone, shared) and int(np.argmax(lone)) == 0
    assert OCCUPANCY.now == 0


def test_no_second_session_when_a_call_already_has_every_core(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    tiny_onnx(path)
    assert not isinstance(make_session(path, 2, RuntimeChoice(lone_threads=2)), AdaptiveSession)
    assert not isinstance(make_session(path, 1, RuntimeChoice()), AdaptiveSession)


def test_lanes_and_threads_follow_the_cores_this_process_may_use() -> None:
    import subprocess
    import sys

    code = (
        "import os; os.sched_setaffinity(0, {0});"
        "from argus.settings import Settings, available_cores; s = Settings();"
        "print(available_cores(), s.lane_count(), s.threads_per_session(), s.lone_thread_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Pinned to one CPU (as a container's cpuset or CPU limit would): one lane of one thread,
    # no second session — not one lane per core of the whole machine.
    assert out.stdout.split() == ["1", "1", "1", "1"]
