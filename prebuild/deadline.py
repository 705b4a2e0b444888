"""One time budget per command, shared by every network and engine call under it.

Each command creates one `Deadline` (pull: its --timeout; plan/build/gc: `--deadline`, env
PREBUILD_DEADLINE, else a default per command) and makes it current for the process with
`scope`. Every registry request, S3 call and engine subprocess then takes `remaining()` as its
own limit, so a slow or silent peer anywhere costs at most what is left, never a fixed
per-call timeout on top of it. The current deadline is process-wide (not a context variable)
on purpose: thread pools must see it without each submit copying a context.

`SocketWatch` enforces a deadline on sockets whose reads are only bounded per `recv` (a peer
trickling one byte a second never trips a read timeout): a single watchdog thread shuts the
socket down when its time is up, which wakes the blocked reader with end-of-file.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from prebuild.durations import parse_duration
from prebuild.errors import UsageError

ENV = "PREBUILD_DEADLINE"
_process_start: float | None = None  # set by the CLI's main() for the command it runs
MAX_STARTUP = 5.0  # seconds of interpreter start-up and imports counted into a budget
DEFAULTS = {"plan": 120.0, "build": 4 * 3600.0, "gc": 600.0}


class Deadline:
    """An absolute end time on the monotonic clock; unbounded when `seconds` is None."""

    __slots__ = ("end", "seconds", "what")

    def __init__(
        self, seconds: float | None, what: str = "command", *, start: float | None = None
    ) -> None:
        """`start` (monotonic): when the budget began, e.g. the process's start (default now)."""
        self.seconds = seconds
        self.what = what
        begin = time.monotonic() if start is None else start
        self.end = math.inf if seconds is None else begin + seconds

    def remaining(self) -> float:
        """Seconds left (never negative; inf when unbounded)."""
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def cap(self, seconds: float | None) -> float | None:
        """min(seconds, what is left); None when both are unbounded."""
        left = self.remaining()
        value = left if seconds is None else min(seconds, left)
        return None if math.isinf(value) else value

    def within(self, seconds: float | None) -> Deadline:
        """A sub-budget: `seconds` from now, but never past this deadline."""
        child = Deadline(None, self.what)
        child.seconds = self.seconds
        child.end = self.end if seconds is None else min(self.end, time.monotonic() + seconds)
        return child

    def describe(self) -> str:
        return f"{self.seconds:g}s {self.what} deadline" if self.seconds else "deadline"


_UNBOUNDED = Deadline(None, "unbounded")
_current = _UNBOUNDED


def current() -> Deadline:
    """The running command's deadline (unbounded outside a command)."""
    return _current


@contextmanager
def scope(deadline: Deadline) -> Iterator[Deadline]:
    """Make `deadline` the current one for the duration of a command."""
    global _current
    previous, _current = _current, deadline
    try:
        yield deadline
    finally:
        _current = previous


@contextmanager
def command_started() -> Iterator[None]:
    """Budgets of the command run inside count from now (the CLI's entry), not from when
    the command's own code starts: imports and config loading are part of the time."""
    global _process_start
    _process_start = time.monotonic() - _process_age()
    try:
        yield
    finally:
        _process_start = None


def _process_age() -> float:
    """Seconds since this process was started (interpreter start-up and imports included),
    from /proc; 0 where that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 (starttime), after pid and (comm)
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
    # more than a start-up's worth: main() runs inside a longer-lived process (tests)
    return age if 0.0 <= age <= MAX_STARTUP else 0.0


def started() -> float:
    """When the running command began (now, outside the CLI)."""
    return _process_start if _process_start is not None else time.monotonic()


def for_command(command: str, option: str | None) -> Deadline:
    """The deadline of `command`: --deadline, else $PREBUILD_DEADLINE, else its default."""
    text = option if option is not None else os.environ.get(ENV)
    if text is None or not text.strip():
        return Deadline(DEFAULTS.get(command), command, start=started())
    try:
        seconds = _seconds(text)
    except ValueError as error:
        where = "--deadline" if option is not None else ENV
        raise UsageError(f"{where}: {error}") from None
    if seconds <= 0:
        raise UsageError(f"{'--deadline' if option is not None else ENV}: must be > 0")
    return Deadline(seconds, command, start=started())


def _seconds(text: str) -> float:
    """ "90" (seconds) or a duration such as "90s", "30m", "2h"."""
    try:
        return float(text)
    except ValueError:
        return float(parse_duration(text))


class SocketWatch:
    """One watchdog thread shutting down sockets whose deadline passed (see module doc)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], socket.socket | None]]] = []
        self._live: set[int] = set()
        self._fired: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, end: float, get_socket: Callable[[], socket.socket | None]) -> int:
        """Watch what `get_socket()` returns until `disarm`; shut it down at `end`."""
        with self._cond:
            token = next(self._ids)
            if math.isinf(end):
                return token  # nothing to enforce
            self._live.add(token)
            heapq.heappush(self._heap, (end, token, get_socket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="prebuild-deadline", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the watchdog fired for this token."""
        with self._cond:
            self._live.discard(token)
            fired = token in self._fired
            self._fired.discard(token)
            return fired

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                end, token, get_socket = self._heap[0]
                wait = end - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                self._fired.add(token)
            _shutdown(get_socket())


def _shutdown(sock: socket.socket | None) -> None:
    """Wake a reader blocked on `sock` with EOF. The plain socket's shutdown, even for TLS:
    SSLSocket.shutdown would also drop its SSL object under the reading thread's feet."""
    if sock is None:
        return
    with suppress(OSError, TypeError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


WATCH = SocketWatch()
