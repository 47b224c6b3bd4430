"""What every command shares: an error is one line on stderr, however long."""

from __future__ import annotations

import pytest
import typer

from argus.cli.common import err_console, fail


def test_an_error_is_one_line_however_long(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(err_console, "width", 80)
    path = "/tmp/pytest-of-someone/pytest-12/popen-gw1/test_a_long_name0/" + "deep/" * 10
    with pytest.raises(typer.Exit) as exited:
        fail(f"the source folder {path} does not exist", 2)
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == f"error: the source folder {path} does not exist\n"
