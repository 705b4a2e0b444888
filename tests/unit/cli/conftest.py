"""Runs `prebuild` through its real entry point for the CLI tests."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from prebuild.cli import main

RunMain = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture
def run_main(monkeypatch: pytest.MonkeyPatch) -> RunMain:
    """(exit code, stdout, stderr) of `prebuild ARGS` via prebuild.cli.main, which owns the
    error printing and exit codes (CliRunner only captures the streams)."""

    def run(args: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["prebuild", *args])
        code: int | str | None = 0
        with CliRunner().isolation() as (stdout, stderr, _):
            try:
                main()
            except SystemExit as done:
                code = done.code
        assert isinstance(code, int)
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()

    return run
