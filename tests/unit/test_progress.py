"""Progress lines: silent for short loops, then about every tenth, and the end."""

from __future__ import annotations

import pytest

from prebuild import progress
from prebuild.progress import Progress, line_sink


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def test_short_loop_prints_nothing(clock: list[float]) -> None:
    said: list[str] = []
    task = Progress("gc r: tags", 50, line_sink(say=said.append))
    for _ in range(50):
        task.advance()
    task.finish()
    assert said == []


def test_long_loop_prints_tenths_and_the_end(clock: list[float]) -> None:
    said: list[str] = []
    task = Progress("gc r: tags", 100, line_sink(say=said.append))
    for _ in range(100):
        clock[0] += 0.25  # 25 seconds in all
        task.advance()
    task.finish()
    assert said[0] == "gc r: tags: 8/100"  # the first line once 2 s have passed
    assert said[1:-1] == [f"gc r: tags: {n}/100" for n in range(18, 100, 10)]
    assert said[-1] == "gc r: tags: 100/100 done"


def test_unknown_total_prints_by_time(clock: list[float]) -> None:
    said: list[str] = []
    task = Progress("listing", None, line_sink(say=said.append, interval=5))
    for _ in range(120):
        clock[0] += 0.25
        task.advance()
    task.finish()
    assert said == [f"listing: {n}" for n in (8, 28, 48, 68, 88, 108)] + ["listing: 120 done"]


def test_silent_progress_costs_nothing() -> None:
    task = progress.silent("x", 3)
    task.advance()
    task.finish()
    assert task.done == 0
