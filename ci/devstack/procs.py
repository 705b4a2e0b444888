"""Start, find and stop the stack's own processes, by pidfile only (never by name).

A pidfile holds "PID START_TIME" (start time from /proc/PID/stat) so a pid reused by an
unrelated process after an unclean kill is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StackError(Exception):
    """A failure the user can act on; printed without a traceback."""


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def read_pidfile(path: Path) -> int | None:
    """The live process a pidfile names, or None (and the stale file removed)."""
    try:
        parts = path.read_text().split()
    except OSError:
        return None
    if parts and parts[0].isdigit():
        pid = int(parts[0])
        started = start_time(pid)
        if started is not None and (len(parts) < 2 or parts[1] == started):
            return pid
    path.unlink(missing_ok=True)
    return None


def write_pidfile(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {start_time(pid) or ''}\n")


def spawn(
    argv: Sequence[str], *, pidfile: Path, log: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start a daemon detached from this command (own session), logging to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    write_pidfile(pidfile, proc.pid)
    return proc.pid


def stop(pidfile: Path, *, timeout: float = 20.0) -> bool:
    """SIGTERM the process a pidfile names, SIGKILL after `timeout`; True if one was running."""
    pid = read_pidfile(pidfile)
    if pid is None:
        return False
    started = start_time(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and start_time(pid) == started:
        _reap(pid)
        time.sleep(0.1)
    if start_time(pid) == started:
        os.kill(pid, signal.SIGKILL)
        while start_time(pid) == started:
            _reap(pid)
            time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(check: Callable[[], bool], *, what: str, timeout: float, log: Path | None) -> None:
    """Poll `check` until it is true; on timeout raise with the tail of the daemon's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise StackError(f"{what} did not become ready within {timeout:.0f}s\n{tail}")


def orphans_of(prefix: Path, marker: Path) -> list[int]:
    """Live processes run from our private prefix whose command line names `marker` (this
    stack's run dir): containerd and shims left by a killed engine. The prefix alone is not
    enough: stacks with other state dirs share it (PREBUILD_STACK_CACHE), and their healthy
    engines run the same binaries."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ours = exe.startswith(str(prefix) + "/") and _names(cmdline, marker)
        if ours and start_time(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def _names(cmdline: str, path: Path) -> bool:
    """`path` or a path below it is an argument (or an option's `=value`) of `cmdline`."""
    text = str(path)
    values = (arg.rpartition("=")[2] for arg in cmdline.split())
    return any(value == text or value.startswith(text + "/") for value in values)


def unmount_under(*roots: Path) -> int:
    """Lazily unmount everything mounted below our data dirs (left by a killed engine)."""
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if any(mount_point == str(r) or mount_point.startswith(str(r) + "/") for r in roots):
            targets.append(mount_point)
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    return len(targets)
