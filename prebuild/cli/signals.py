"""Ctrl-C and SIGTERM: stop within a second or two, whatever is blocked.

Worker threads may sit in a registry read or an S3 upload that no signal interrupts, and
Python joins them at exit; so the handler does the whole stop itself: kill every engine child
group prebuild started, let the command write what it has (its report says "interrupted"),
flush, and leave with os._exit. Nothing is pushed after that point: the builds that would
push were killed first.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from prebuild.engine import process

_on_interrupt: list[Callable[[str], None]] = []
_once = threading.Lock()


def on_interrupt(callback: Callable[[str], None]) -> Callable[[], None]:
    """Run `callback(signal name)` when prebuild is interrupted; returns an unregister."""
    _on_interrupt.append(callback)
    return lambda: _on_interrupt.remove(callback) if callback in _on_interrupt else None


@contextmanager
def installed() -> Iterator[None]:
    """Ctrl-C / SIGTERM handled as above while the command runs; previous handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (prebuild embedded in a worker)
        return
    previous = {sig: signal.signal(sig, _handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _handle(signum: int, frame: FrameType | None) -> None:
    if not _once.acquire(blocking=False):
        return  # a second Ctrl-C while stopping: the stop is already on its way
    name = signal.Signals(signum).name
    print(f"interrupted ({name}): stopping", file=sys.stderr, flush=True)
    killed = process.kill_all(grace=1.0)
    if killed:
        print(f"interrupted: killed {killed} engine command(s)", file=sys.stderr, flush=True)
    for callback in list(_on_interrupt):
        try:
            callback(name)
        except Exception as error:  # noqa: BLE001 - the stop must go on
            print(f"interrupted: {error}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)
