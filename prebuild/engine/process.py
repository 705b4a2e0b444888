"""Engine CLI child processes: each in its own process group, bounded, killable as a whole.

A docker CLI command can hang forever (an engine socket that accepts and never answers;
`docker version` has no timeout of its own), and a build's buildx may start helpers of its
own. So every child runs in a new session (its own process group): on expiry of the command's
deadline, or on Ctrl-C / SIGTERM of prebuild, the whole group is killed, not just the CLI.
Living children are tracked so `kill_all` can stop every build prebuild started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prebuild import deadline as deadlines
from prebuild.errors import DockerError

_live: set[subprocess.Popen[str]] = set()
_lock = threading.Lock()
_stopping = threading.Event()


class EngineTimeout(DockerError):
    """An engine command did not finish before the deadline; its process group was killed."""


def run(argv: Sequence[str], *, timeout: float | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `argv`, killed (group and all) after
    min(timeout, what the deadline leaves)."""
    limit = deadlines.current().cap(timeout)
    if limit is not None and limit <= 0:
        raise _expired(argv, 0.0)
    with _started(argv, merge=False) as proc:
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise _expired(argv, limit) from None
    return proc.returncode, out, err


def stream(argv: Sequence[str], on_line: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run `argv` with stdout and stderr merged, each line to `on_line` as it arrives;
    (exit code, every line). Killed when the deadline passes (EngineTimeout)."""
    end = deadlines.current().end
    lines: list[str] = []
    with _started(argv, merge=True) as proc:
        timer = _killer(proc, end)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                on_line(lines[-1])
            proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        if getattr(proc, "_prebuild_expired", False):
            raise _expired(argv, deadlines.current().seconds)
    return proc.returncode, lines


def kill_all(grace: float = 1.0) -> int:
    """Stop every child group prebuild started: SIGTERM, then SIGKILL after `grace` seconds.
    Returns how many were running. Used on Ctrl-C / SIGTERM; later starts are refused."""
    _stopping.set()
    with _lock:
        procs = list(_live)
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    end = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, end - time.monotonic()))
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
    return len(procs)


def running() -> int:
    with _lock:
        return len(_live)


@contextlib.contextmanager
def _started(argv: Sequence[str], *, merge: bool) -> Iterator[subprocess.Popen[str]]:
    if _stopping.is_set():
        raise DockerError("interrupted: not starting " + " ".join(argv[:3]))
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: killed as a whole
        )
    except FileNotFoundError as error:
        raise DockerError(f"{argv[0]}: the client was not found on PATH") from error
    with _lock:
        _live.add(proc)
    try:
        yield proc
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        with _lock:
            _live.discard(proc)
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()


def _killer(proc: subprocess.Popen[str], end: float) -> threading.Timer | None:
    if end == float("inf"):
        return None

    def expire() -> None:
        proc._prebuild_expired = True  # type: ignore[attr-defined]
        _kill_group(proc)

    timer = threading.Timer(max(0.0, end - time.monotonic()), expire)
    timer.daemon = True
    timer.start()
    return timer


def _kill_group(proc: subprocess.Popen[str]) -> None:
    _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    if proc.returncode is not None:  # reaped: its pid (and group id) may be reused
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid


def _expired(argv: Sequence[str], limit: float | None) -> EngineTimeout:
    what = " ".join(argv[:3])
    budget = f"{limit:.1f}s" if limit is not None else "the deadline"
    return EngineTimeout(
        f"{what}: the engine did not answer within {budget} (command killed)",
        hint="is the engine (DOCKER_HOST) up and answering? `docker version` should reply",
    )
