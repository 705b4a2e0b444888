"""Exit codes that tell the truth when the registry cannot be asked, within --deadline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.unit.plan.test_planner import UNREACHABLE, write_repo


@pytest.fixture
def down_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The four-image repo, its registry refusing connections, as the cwd."""
    write_repo(tmp_path, UNREACHABLE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREBUILD_DEADLINE", raising=False)
    monkeypatch.setattr("prebuild.engine.platforms.native", lambda *a, **k: "linux/amd64")
    return tmp_path


def test_online_plan_with_every_image_unknown_exits_1(down_repo, run_main) -> None:
    started = time.monotonic()
    code, out, err = run_main(["plan", "--deadline", "1.5"])
    assert time.monotonic() - started < 5  # the deadline, not 30s of retries per call
    assert code == 1
    assert "error: status unknown for 4 image(s): base, app, tool, other" in err
    rows = out.splitlines()[1:]
    assert len(rows) == 4 and all("  unknown  " in row for row in rows)
    assert all("connection refused" in row or "out of time" in row for row in rows)


def test_offline_plan_keeps_exit_0(down_repo, run_main) -> None:
    code, _, err = run_main(["plan", "--offline"])
    assert (code, err) == (0, "")


def test_deadline_from_the_environment(down_repo, run_main, monkeypatch) -> None:
    monkeypatch.setenv("PREBUILD_DEADLINE", "1s")
    started = time.monotonic()
    code, _, _ = run_main(["plan", "--json"])
    assert code == 1 and time.monotonic() - started < 5


def test_bad_deadline_is_a_usage_error(down_repo, run_main) -> None:
    code, _, err = run_main(["plan", "--deadline", "soon"])
    assert code == 2 and "--deadline: invalid duration 'soon'" in err


def test_build_dry_run_never_reports_unchecked_images_as_fine(down_repo, run_main) -> None:
    code, out, err = run_main(["build", "--dry-run", "--plain", "--deadline", "1.5"])
    assert code == 1
    assert "status unknown for" in err
    # no key (its base could not be pinned): failed; a key but no answer: planned, unknown
    assert all(("\tfailed\t" in x or "\tplanned\tunknown" in x) for x in out.splitlines())
