"""``argus train``, ``argus evaluate`` and ``argus models show`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import ARGUS
from tests.train.conftest import write_coffee_or_cat


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARGUS_HOME": str(home), "COLUMNS": "80"}
    return subprocess.run([ARGUS, *args], env=env, capture_output=True, text=True, timeout=300)


def test_train_then_evaluate_then_show_the_lineage(home_copy: Path, tmp_path: Path) -> None:
    # no --data: the model's dataset folder, where `argus review label` files photos
    write_coffee_or_cat(home_copy / "datasets" / "coffee-or-cat", 8)
    trained = run(home_copy, "train", "coffee-or-cat", "--mode", "head", "--val", "0.25",
                  "--promote-if-better")
    assert trained.returncode == 0, trained.stderr
    out = trained.stdout
    assert "coffee-or-cat version 1" in out and "accuracy 100.00%" in out
    assert "no recommended threshold: all 4 held-out answers were right" in " ".join(out.split())
    assert "promoted version 1 to production" in out
    # 80 columns, but for the package's path (on a line of its own, never cut, to copy)
    assert max(len(line) for line in out.splitlines() if not line.startswith("/")) <= 80
    assert "reading photos" in trained.stderr  # the progress bars

    held = write_coffee_or_cat(tmp_path / "held", 3, seed=9)
    picture = tmp_path / "confusion.png"
    evaluated = run(home_copy, "evaluate", "coffee-or-cat@production", "--data", str(held),
                    "--json", "--picture", str(picture))
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)["report"]
    assert report["images"] == 6 and report["confusion"] == [[3, 0], [0, 3]]
    assert picture.read_bytes()[:4] == b"\x89PNG"

    shown = run(home_copy, "models", "show", "coffee-or-cat")
    assert shown.returncode == 0, shown.stderr
    words = " ".join(shown.stdout.split())
    assert "version 1: base efficientnet-lite0:1" in words
    assert "split 12 train / 4 held out (val 0.25, seed 0); mode head;" in words

    missing = run(home_copy, "train", "x", "--data", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a folder" in " ".join(missing.stderr.split())
    neither = run(home_copy, "train", "x")
    assert neither.returncode == 2
    assert "--data DIR or as --csv FILE (or label photos into" in " ".join(neither.stderr.split())
