"""`argus models|apps|jobs|questions` as a user runs them in an 80-column terminal: content
identity, --source, removing aliases and canaries, apps show/unpin/rm, and tables that never
cut an id someone has to type back."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from argus.cli.app import app as cli
from argus.cli.common import console, err_console
from argus.settings import Settings
from tests.tiny_model import TINY, register_tiny, tiny_onnx


class Done:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def run(home: Path, group: str, *args: str, ok: bool = True) -> Done:
    """The command in this process (a subprocess per command would take seconds each), in
    an 80-column terminal, with ARGUS_HOME set as a user would."""
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARGUS_HOME", str(home))
        mp.delenv("ARGUS_DATABASE_URL", raising=False)
        mp.setattr(console, "width", 80)
        mp.setattr(err_console, "width", 80)
        result = runner.invoke(cli, [group, *args])
    done = Done(result.exit_code, result.stdout, result.stderr)
    if ok:
        assert done.returncode == 0, (done.stdout, done.stderr, result.exception)
    return done


@pytest.fixture
def home(tmp_path: Path) -> Path:
    settings = Settings(home=tmp_path / "home")
    register_tiny(settings, tmp_path / "tiny")
    return settings.home


def fits(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


def test_the_same_file_from_another_folder_is_the_same_version(
    home: Path, tmp_path: Path
) -> None:
    first = tmp_path / "a" / "net.onnx"
    first.parent.mkdir()
    tiny_onnx(first)
    second = tmp_path / "b" / "elsewhere.onnx"
    second.parent.mkdir()
    shutil.copy(first, second)
    url = "https://models.example.org/classifiers/a-rather-long-path/net.onnx"
    added = json.loads(run(home, "models", "add", "net", str(first), "--task", "classify",
                           "--source", url, "--json").stdout)
    again = json.loads(run(home, "models", "add", "net", str(second), "--task", "classify",
                           "--json").stdout)
    assert (added["version"], again["version"]) == (1, 1)
    assert again["result"] == "identical content already registered"
    assert added["source"]["url"] == url
    listed = run(home, "models", "list").stdout
    assert fits(listed) and re.search(r"\bnet\b", listed)
    shown = run(home, "models", "show", "net", "--json").stdout
    assert json.loads(shown)["versions"][0]["source"]["url"] == url


def test_alias_canary_and_app_commands(home: Path, tmp_path: Path) -> None:
    run(home, "models", "alias", TINY, "beta", "1")
    run(home, "models", "rm-alias", TINY, "beta")
    assert "beta" not in json.loads(run(home, "models", "show", TINY, "--json").stdout)["aliases"]
    run(home, "models", "canary", TINY, "1", "--percent", "5")
    run(home, "models", "end-canary", TINY)
    assert json.loads(run(home, "models", "show", TINY, "--json").stdout)["canary_percent"] is None
    history = [e["action"] for e in json.loads(run(home, "models", "history", TINY,
                                                    "--json").stdout)]
    assert history[-4:] == ["alias", "delete-alias", "canary", "end-canary"]

    run(home, "apps", "add", "kiosk")
    refused = run(home, "apps", "pin", "kiosk", TINY, "²", ok=False)
    assert refused.returncode != 0 and "version number or an @alias" in refused.stderr
    run(home, "apps", "pin", "kiosk", TINY, "1")
    shown = json.loads(run(home, "apps", "show", "kiosk", "--json").stdout)
    assert shown["pins"] == [{"model": TINY, "version": 1, "alias": None}]
    assert fits(run(home, "apps", "show", "kiosk").stdout)
    run(home, "apps", "unpin", "kiosk", TINY)
    run(home, "apps", "rm", "kiosk")
    gone = run(home, "apps", "show", "kiosk", ok=False)
    assert gone.returncode != 0 and "no app named 'kiosk'" in gone.stderr


def test_models_rm_refuses_what_a_question_needs(home: Path) -> None:
    questions = home / "questions"
    questions.mkdir(parents=True, exist_ok=True)
    (questions / "gated.yaml").write_text(
        f"question: gated\nsteps:\n  first: {{model: {TINY}}}\nanswer: first\n"
    )
    run(home, "models", "rm-alias", TINY, "production")
    refused = run(home, "models", "rm", TINY, "1", ok=False)
    assert refused.returncode != 0 and "question gated" in refused.stderr
    listed = run(home, "questions", "list").stdout
    assert fits(listed) and "gated" in listed


def test_jobs_list_at_80_columns_shows_whole_ids_and_show_takes_a_prefix(
    home: Path, photo_dir: Path
) -> None:
    ids = [
        json.loads(run(home, "jobs", "submit", TINY, str(photo_dir / name), "--json").stdout)["id"]
        for name in ("coffee.jpg", "rocket.jpg")
    ]
    listed = run(home, "jobs", "list").stdout
    assert fits(listed)
    for job_id in ids:
        assert job_id in listed
    prefix = ids[0][: len("job_") + 10]
    shown = json.loads(run(home, "jobs", "show", prefix, "--json").stdout)
    assert shown["id"] == ids[0]
    assert json.loads(run(home, "jobs", "cancel", ids[1][4:14], "--json").stdout)["id"] == ids[1]
    ambiguous = run(home, "jobs", "show", "job_", ok=False)
    assert ambiguous.returncode != 0
