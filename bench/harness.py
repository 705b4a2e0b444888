"""Timing, repetitions, statistics, the results table and results.json.

Every scenario reports *series*: the raw value of each measured repetition (the warm-up is
run and thrown away), summarised as median / min / max. Ratios are computed per repetition
from the paired measurements of that repetition, then summarised the same way, so a slow
moment of the machine (other jobs share its 2 cores) hits both sides of one ratio together.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

OUT = Path(__file__).resolve().parent / "out"
REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class CommandFailed(RuntimeError):
    """A command a scenario depends on failed: the scenario cannot produce a number."""


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """Run a command with its output captured (a terminal would slow both sides unevenly)."""
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-25:])
        raise CommandFailed(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return proc


def timed(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    expect: str | None = None,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of one command (which must succeed, and print `expect` if given)."""
    start = time.perf_counter()
    proc = run(argv, cwd=cwd, env=env)
    seconds = time.perf_counter() - start
    if expect is not None and expect not in proc.stdout + proc.stderr:
        raise CommandFailed(f"{' '.join(argv)}: expected {expect!r} in its output:\n{proc.stdout}")
    return seconds, proc


class Measured(NamedTuple):
    seconds: float
    cpu_seconds: float  # user + system: what a busy shared machine does not inflate
    rss_mb: float
    stdout: str


def timed_rss(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Measured:
    """Wall seconds, CPU seconds, peak RSS and stdout of one command that must succeed: wait4
    gives the child's own rusage, so the peak is this command's, not the bench's. Output goes
    to temp files (reading pipes would need a second waiter)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join((stderr + stdout).strip().splitlines()[-25:])
        raise CommandFailed(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(seconds, cpu, usage.ru_maxrss / 1024, stdout)


@dataclass
class Series:
    """One measured quantity over the repetitions."""

    name: str
    unit: str  # "s", "x" (ratio), "req", "req/image", "MB" ...
    values: list[float]
    target: str | None = None  # e.g. "<= 1.10"
    met: bool | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def check(self, op: str, limit: float) -> Series:
        """Judge the median against a target and remember it."""
        self.target = f"{op} {limit:g}"
        value = self.median
        self.met = value <= limit if op == "<=" else value >= limit
        return self

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.update(median=self.median, min=self.min, max=self.max)
        return doc


@dataclass
class ScenarioResult:
    id: str
    title: str
    compares: str  # the scenario's docstring: what it compares and why that is fair
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at start / end
    error: str | None = None

    def add(self, name: str, unit: str, values: Sequence[float]) -> Series:
        series = Series(name, unit, [float(v) for v in values])
        self.series.append(series)
        return series

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "compares": self.compares,
            "series": [s.as_json() for s in self.series],
            "notes": self.notes,
            "extra": self.extra,
            "seconds": round(self.seconds, 1),
            "load_average_start_end": list(self.load),
            "error": self.error,
        }


@dataclass(frozen=True)
class Reps:
    """How many times each measurement runs: one warm-up (discarded), then `count`."""

    count: int = 5
    warmup: int = 1

    @property
    def total(self) -> int:
        return self.warmup + self.count

    def at_least(self, count: int) -> Reps:
        """More repetitions for a scenario whose single measurements are noisy."""
        return Reps(count=max(self.count, count), warmup=self.warmup)


def paired(
    reps: Reps,
    sides: Mapping[str, Callable[[], float]],
    *,
    label: str,
    alternate: bool = True,
) -> dict[str, list[float]]:
    """Run every side once per repetition, rotating their order each repetition when
    `alternate` (so neither side always runs first, on a warmer or a noisier machine).
    Each side prepares itself (e.g. wipes the engine) and returns only its measured time."""
    names = list(sides)
    values: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps.total):
        order = names[rep % len(names) :] + names[: rep % len(names)] if alternate else names
        got = {name: sides[name]() for name in order}
        warm = rep < reps.warmup
        shown = ", ".join(f"{n} {got[n]:.2f}" for n in order)
        log(
            f"{label} {'warm-up' if warm else f'rep {rep - reps.warmup + 1}/{reps.count}'}: {shown}"
        )
        if not warm:
            for name in names:
                values[name].append(got[name])
    return values


def ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def differences(minuend: Sequence[float], subtrahend: Sequence[float]) -> list[float]:
    return [a - b for a, b in zip(minuend, subtrahend, strict=True)]


# -- output -----------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}"
    if unit == "s":
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}"


def table(results: Sequence[ScenarioResult]) -> list[str]:
    """The results as an aligned plain-text table (also valid inside a Markdown code block)."""
    head = ("id", "measurement", "unit", "median", "min", "max", "target", "met")
    rows: list[tuple[str, ...]] = []
    for result in results:
        if result.error:
            rows.append((result.id, f"FAILED: {result.error.splitlines()[0][:70]}", *[""] * 6))
            continue
        for s in result.series:
            met = "" if s.met is None else ("yes" if s.met else "NO")
            rows.append(
                (
                    result.id,
                    s.name,
                    s.unit,
                    _fmt(s.median, s.unit),
                    _fmt(s.min, s.unit),
                    _fmt(s.max, s.unit),
                    s.target or "",
                    met,
                )
            )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    numeric = {3, 4, 5}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [line(head), line(tuple("-" * w for w in widths)), *map(line, rows)]


def write_json(path: Path, machine: Mapping[str, Any], results: Sequence[ScenarioResult],
               reps: Reps, started: float) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "repetitions": reps.count,
        "warmup": reps.warmup,
        "machine": dict(machine),
        "scenarios": [r.as_json() for r in results],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)
