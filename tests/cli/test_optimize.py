"""``argus models optimize`` and ``argus models show`` as a user runs them, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_train import run
from tests.optimize.conftest import grey_dir, tiny_home  # noqa: F401 - fixtures


def test_refused_promotion_says_why_and_show_gives_the_lineage(
    tiny_home: Path, grey_dir: Path  # noqa: F811 - fixtures
) -> None:
    made = run(tiny_home, "models", "optimize", "tiny", "--calibrate", str(grey_dir),
               "--promote-if-agrees", "0.99")
    assert made.returncode == 1, made.stderr
    out = " ".join(made.stdout.split())
    assert "tiny version 2" in out and "int8 of version 1" in out
    assert "not promoted: top-1 agreement" in out and "below --promote-if-agrees 0.99" in out
    assert "version 2 is kept" in out
    assert "quantizing" in made.stderr  # the progress bars

    shown = run(tiny_home, "models", "show", "tiny")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "int8 of tiny:1" in text and "calibrated on 3 photos" in text
    assert "agreement (top-1 agreement)" in text
    listed = json.loads(run(tiny_home, "models", "show", "tiny", "--json").stdout)
    assert listed["aliases"] == {"production": 1}
    assert listed["versions"][1]["source"]["kind"] == "optimized"

    for flags, message in ((["--canary", "0"], "--canary must be a share of traffic from 1"),
                           (["--to", "fp4"], "--to must be one of int8, bf16")):
        refused = run(tiny_home, "models", "optimize", "tiny", "--calibrate", str(grey_dir),
                      *flags)
        assert refused.returncode == 2 and message in " ".join(refused.stderr.split())
