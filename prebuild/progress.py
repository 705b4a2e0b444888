"""Progress of long loops (gc over many tags and objects, s3-sync transfers).

A bar on a TTY (rich), plain lines otherwise: CI logs get a line when a step starts, about
every tenth of the way (at most every few seconds) and when it ends, never one per item.
Work reports through `Progress.advance`, which is thread-safe (transfers run in pools) and
costs nothing when nobody watches (`Progress.silent`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# sink(what, done, total, finished): told about changes, already throttled for lines
Sink = Callable[[str, int, int | None, bool], None]
Track = Callable[[str, "int | None"], "Progress"]  # (what, total) -> a Progress to advance
LINE_INTERVAL = 5.0  # seconds between plain lines when the total is unknown
QUIET_SECONDS = 2.0  # loops shorter than this print no progress lines at all


class Progress:
    def __init__(self, what: str, total: int | None, sink: Sink | None) -> None:
        self.what, self.total, self.sink = what, total, sink
        self.done = 0
        self._lock = threading.Lock()
        if sink is not None:
            sink(what, 0, total, False)

    @classmethod
    def silent(cls) -> Progress:
        return cls("", None, None)

    def advance(self, n: int = 1) -> None:
        if self.sink is None:
            return
        with self._lock:
            self.done += n
            done = self.done
        self.sink(self.what, done, self.total, False)

    def finish(self) -> None:
        if self.sink is not None:
            self.sink(self.what, self.done, self.total, True)


def silent(what: str, total: int | None) -> Progress:
    """The Track of library calls nobody watches."""
    return Progress.silent()


def line_sink(
    stream: TextIO | None = None,
    interval: float = LINE_INTERVAL,
    say: Callable[[str], None] | None = None,
    quiet_for: float = QUIET_SECONDS,
) -> Sink:
    """Plain lines for loops that take a while: nothing during the first `quiet_for` seconds
    (short loops stay silent), then each further tenth (or every `interval` seconds when the
    total is unknown), and the end when anything was said."""
    started: dict[str, float] = {}
    said: dict[str, tuple[int, float]] = {}  # what -> (done, when) of the last line
    lock = threading.Lock()

    def sink(what: str, done: int, total: int | None, finished: bool) -> None:
        now = time.monotonic()
        with lock:
            begin = started.setdefault(what, now)
            last = said.get(what)
            if last is None:
                due = now - begin >= quiet_for and not finished
            elif finished:
                due = True
            elif total:
                due = done - last[0] >= max(1, total // 10)
            else:
                due = now - last[1] >= interval
            if not due:
                return
            said[what] = (done, now)
        count = f"{done}/{total}" if total is not None else str(done)
        text = f"{what}: {count}{' done' if finished else ''}"
        if say is not None:
            say(text)
        else:
            print(text, file=stream or sys.stderr, flush=True)

    return sink


@contextmanager
def reporter(*, live: bool | None = None) -> Iterator[Track]:
    """A factory of Progress for one command: rich bars on a TTY stderr, lines otherwise."""
    if live is None:
        live = sys.stderr.isatty()
    if not live:
        lines = line_sink()
        yield lambda what, total: Progress(what, total, lines)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    bars = Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: dict[str, Any] = {}

    def sink(what: str, done: int, total: int | None, finished: bool) -> None:
        if what not in tasks:
            tasks[what] = bars.add_task(what, total=total)
        bars.update(tasks[what], completed=done, total=total)

    with bars:
        yield lambda what, total: Progress(what, total, sink)
