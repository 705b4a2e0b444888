"""The live table of a build on a terminal (rich): image, state, elapsed, last build line.

Its own module so that rich is imported only when a terminal shows it: a no-op nightly in CI
prints plain lines and never pays for it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from prebuild.progress import Progress, Track


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
