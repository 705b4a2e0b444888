"""Progress for humans: a live per-image table on a TTY (rich), timestamped lines otherwise.

Both write to stderr; stdout stays for machine-readable output.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from prebuild.progress import Progress, Track, line_sink


class Display(Protocol):
    def start(self, name: str, ref: str) -> None: ...
    def line(self, name: str, text: str) -> None: ...
    def done(self, name: str, status: str, detail: str) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...
    def track(self, name: str) -> Track: ...


class PlainDisplay:
    """One timestamped line per event: what CI logs want. Build output is prefixed, not hidden."""

    def __init__(self, *, verbose: bool = True) -> None:
        self.verbose = verbose
        self._lock = threading.Lock()

    def _say(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            print(f"{stamp} {text}", file=sys.stderr, flush=True)

    def start(self, name: str, ref: str) -> None:
        self._say(f"[{name}] building {ref}")

    def line(self, name: str, text: str) -> None:
        if self.verbose and text.strip():
            self._say(f"[{name}] {text}")

    def done(self, name: str, status: str, detail: str) -> None:
        self._say(f"[{name}] {status}{': ' + detail if detail else ''}")

    def note(self, text: str) -> None:
        self._say(text)

    def close(self) -> None:
        pass

    def track(self, name: str) -> Track:
        """Transfers (s3-sync) as throttled lines: start, every tenth, end."""
        sink = line_sink(say=lambda text: self._say(f"[{name}] {text}"))
        return lambda what, total: Progress(what, total, sink)


class LiveDisplay:
    """A table refreshed in place: image, state, elapsed, last build line."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.rows: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def _table(self) -> Table:
        table = Table(expand=True)
        for column in ("image", "state", "time", "last step"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        for name, (state, started, last) in self.rows.items():
            elapsed = f"{time.monotonic() - float(started):.0f}s" if state == "building" else ""
            table.add_row(
                name, str(state), elapsed, last if not isinstance(last, str) else last[-90:]
            )
        return table

    def _update(self, name: str, **values: str | float | RenderableType) -> None:
        with self._lock:
            row = self.rows.setdefault(name, ["queued", time.monotonic(), ""])
            for index, key in enumerate(("state", "started", "last")):
                if key in values:
                    row[index] = values[key]
            self.live.update(self._table())

    def start(self, name: str, ref: str) -> None:
        self._update(name, state="building", started=time.monotonic(), last=ref)

    def line(self, name: str, text: str) -> None:
        if text.startswith("#") and " [" in text:
            self._update(name, last=text)

    def done(self, name: str, status: str, detail: str) -> None:
        self._update(name, state=status, last=detail)

    def note(self, text: str) -> None:
        self.console.print(text)

    def close(self) -> None:
        self.live.stop()

    def track(self, name: str) -> Track:
        """Transfers (s3-sync) as a bar in the image's row of the live table."""

        def sink(what: str, done: int, total: int | None, finished: bool) -> None:
            row = Table.grid(padding=(0, 1))
            row.add_row(what, ProgressBar(total=total, completed=done, width=24), f"{done}/{total}")
            self._update(name, last=row)

        return lambda what, total: Progress(what, total, sink)


def make_display(*, live: bool | None = None) -> Display:
    if live is None:
        live = sys.stderr.isatty()
    return LiveDisplay() if live else PlainDisplay()
