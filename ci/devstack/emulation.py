"""qemu user emulation for linux/arm64 and linux/s390x builds on the stack's engine.

Debian's qemu-user-static registers its interpreters with the F (fix-binary) flag, so they
work inside build containers whatever their root filesystem. Registration is kernel state
shared by the whole machine: `ensure` only mounts binfmt_misc when it is absent and enables
the two entries the stack needs, never touching any other entry. It runs before dockerd
starts, because BuildKit probes which platforms it can emulate when its worker starts.
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.procs import StackError

BINFMT = Path("/proc/sys/fs/binfmt_misc")
# binfmt entry (as qemu-user-static names it) -> the platform it makes buildable
ENTRIES = {"qemu-aarch64": "linux/arm64", "qemu-s390x": "linux/s390x"}
PACKAGES = ("qemu-user-static", "binfmt-support")
# Every stack on the machine enables the entries on `up`; a test that turns one off for a
# while holds this lock, so another checkout's `up` waits instead of undoing it mid-test
# (a killed holder releases it, and the next `up` restores the entry).
LOCK = Path("/run/prebuild-binfmt.lock")


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the machine-wide binfmt lock (changing entries, or keeping them changed)."""
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _refused(what: str, detail: str) -> StackError:
    return StackError(
        f"the kernel refused {what}: {detail.strip() or 'no reason given'}\n"
        "linux/arm64 and linux/s390x images cannot be built here; a container needs "
        "--privileged (or the host itself runs `update-binfmts --enable qemu-aarch64`)"
    )


def _mount() -> None:
    if (BINFMT / "register").exists():
        return
    proc = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, text=True
    )
    if proc.returncode != 0 or not (BINFMT / "register").exists():
        raise _refused(f"mounting binfmt_misc on {BINFMT}", proc.stderr)


def state(entry: str) -> str:
    """'enabled', 'disabled' or 'missing' for one binfmt_misc entry."""
    try:
        first = (BINFMT / entry).read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return "missing"
    return first if first in ("enabled", "disabled") else "missing"


def _enable(entry: str) -> None:
    if state(entry) == "disabled":  # e.g. a test's `echo 0` that was never undone
        try:
            (BINFMT / entry).write_text("1")
        except OSError as error:
            raise _refused(f"enabling {entry}", str(error)) from error
        return
    if not Path("/var/lib/binfmts", entry).exists():  # installed while binfmt-support was not
        subprocess.run(["update-binfmts", "--import", entry], capture_output=True, check=False)
    proc = subprocess.run(["update-binfmts", "--enable", entry], capture_output=True, text=True)
    if state(entry) != "enabled":
        raise _refused(f"registering {entry}", proc.stderr or proc.stdout)


def ensure(say) -> list[str]:
    """Enable every ENTRIES interpreter (idempotent); returns the platforms now emulated."""
    with exclusive():
        _mount()
        for entry in ENTRIES:
            if state(entry) != "enabled":
                _enable(entry)
                say(f"enabled {entry} emulation")
        return [ENTRIES[e] for e in ENTRIES if state(e) == "enabled"]


def summary() -> str:
    """One line for `ci/stack status`."""
    if not (BINFMT / "register").exists():
        return "off (binfmt_misc not mounted)"
    return ", ".join(f"{ENTRIES[e]} {state(e)}" for e in ENTRIES)
