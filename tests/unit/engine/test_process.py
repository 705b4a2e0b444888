"""Engine child processes: own process group, killed whole at the deadline or on kill_all."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from prebuild import deadline as deadlines
from prebuild.engine import process

# a parent that starts a grandchild and both sleep: a group kill must stop both
PARENT = (
    "import subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "open(sys.argv[1], 'w').write(str(child.pid)); print('started', flush=True); time.sleep(60)"
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def _wait_gone(pid: int, seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return False


def test_run_returns_output() -> None:
    assert process.run([sys.executable, "-c", "print('hi')"]) == (0, "hi\n", "")


def test_run_kills_the_group_at_the_deadline(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with deadlines.scope(deadlines.Deadline(1.0, "pull")), pytest.raises(process.EngineTimeout):
        process.run([sys.executable, "-c", PARENT, str(pidfile)])
    assert time.monotonic() - started < 3
    assert _wait_gone(int(pidfile.read_text()))  # the grandchild went with it


def test_run_refuses_to_start_past_the_deadline() -> None:
    with deadlines.scope(deadlines.Deadline(0.0)), pytest.raises(process.EngineTimeout):
        process.run([sys.executable, "-c", "print('never')"])


def test_stream_lines_and_deadline() -> None:
    lines: list[str] = []
    code, seen = process.stream(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"],
        lines.append,
    )
    assert code == 0 and sorted(seen) == ["err", "out"] and lines == seen
    started = time.monotonic()
    with deadlines.scope(deadlines.Deadline(0.5)), pytest.raises(process.EngineTimeout):
        process.stream([sys.executable, "-c", "import time; time.sleep(30)"], lines.append)
    assert time.monotonic() - started < 3


def test_kill_all_stops_running_groups(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(process, "_stopping", threading.Event())  # keep other tests startable
    pidfile = tmp_path / "pid"
    seen: list[str] = []
    worker = threading.Thread(
        target=lambda: seen.append(str(process.stream([sys.executable, "-c", PARENT, str(pidfile)],
                                                      seen.append))),
    )  # fmt: skip
    worker.start()
    end = time.monotonic() + 10
    while "started" not in seen and time.monotonic() < end:
        time.sleep(0.02)
    assert process.running() == 1
    started = time.monotonic()
    assert process.kill_all(grace=0.5) == 1
    worker.join(5)
    assert not worker.is_alive() and time.monotonic() - started < 2
    assert _wait_gone(int(pidfile.read_text()))
    with pytest.raises(Exception, match="interrupted"):
        process.run([sys.executable, "-c", "print(1)"])  # nothing new starts after a stop
