"""`prebuild report --html`: renders the configured history; an empty history is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.cli.conftest import RunMain
from tests.unit.report.test_html import night

CONFIG = 'registry = "127.0.0.1:1/ci"\n[history]\nstore = "dir"\npath = "h"\n'


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "prebuild.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_report_writes_one_page_of_the_kept_history(project: Path, run_main: RunMain) -> None:
    (project / "h").mkdir()
    for n in range(2):
        (project / "h" / f"2026110{n + 1}T030000.000Z.json").write_text(json.dumps(night(n)))
    code, out, err = run_main(["report", "--html", "page.html"])
    assert (code, err) == (0, "")
    assert out == "page.html: last run 2026-11-02T03:00:00Z, 2 runs\n"
    page = (project / "page.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="plot-storage"' in page


def test_empty_history_says_where_it_looked(project: Path, run_main: RunMain) -> None:
    code, out, err = run_main(["report", "--html", "page.html"])
    assert code == 1 and out == ""
    assert err.startswith(f"error: no reports in the history at {project / 'h'}\nhint: ")
    assert not (project / "page.html").exists()


def test_explain_since_an_unknown_key_names_the_history(project: Path, run_main: RunMain) -> None:
    (project / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (project / "a").write_text("a\n")
    (project / "prebuild.toml").write_text(CONFIG + '[[image]]\nname = "x"\ncontext = "."\n')
    code, out, err = run_main(["explain", "x", "--offline", "--since", "a" * 24])
    assert code == 2
    assert f"no report in the history ({project / 'h'}) holds x's key {'a' * 24}" in err
    assert "Traceback" not in err
