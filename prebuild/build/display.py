"""Progress for humans: a live per-image table on a TTY (rich), timestamped lines otherwise.

Both write to stderr; stdout stays for machine-readable output.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Protocol

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


def make_display(*, live: bool | None = None) -> Display:
    if live is None:
        live = sys.stderr.isatty()
    if not live:
        return PlainDisplay()
    from prebuild.build.live import LiveDisplay  # rich: only on a terminal

    return LiveDisplay()
