"""Files a run writes for its CI (reports, summaries, $GITHUB_ENV lines): checked before the
run does anything, written so a reader never sees half of one.

A report is replaced whole (temp file in the same directory + rename); a file CI owns and
appends to ($GITHUB_ENV, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) gets one O_APPEND write, so lines
of two steps never interleave. A path that cannot be written is a UsageError naming the option
or variable that gave it (exit 2), raised by `check` before anything is built or pushed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from prebuild.errors import UsageError


class Target:
    """One output file and who named it (`--report`, `env GITHUB_ENV`) for messages."""

    def __init__(
        self, path: Path | str, given_by: str, *, append: bool, mkdir: bool = False
    ) -> None:
        self.path = Path(path)
        self.given_by = given_by
        self.append = append
        self.mkdir = mkdir  # the writer creates missing parent directories

    def error(self, reason: str) -> UsageError:
        return UsageError(f"{self.given_by} {self.path}: cannot write: {reason}")

    def check(self) -> None:
        """Fail now, with a located message, if writing later would fail: probe by really
        opening the file for append, or creating (and removing) a temp file beside it."""
        path = self.path
        if path.is_dir():
            raise self.error("is a directory")
        parent = path.parent
        while self.mkdir and not parent.exists() and parent != parent.parent:
            parent = parent.parent  # the nearest ancestor must let us create the rest
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise self.error(f"directory {parent} {what}")
        try:
            if parent != path.parent:
                probe = tempfile.mkdtemp(dir=parent, prefix=".prebuild-probe-")
                os.rmdir(probe)
            elif self.append:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666))
            else:
                fd, temp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.")
                os.close(fd)
                os.unlink(temp)
        except OSError as error:
            raise self.error(error.strerror or str(error)) from None

    def write(self, text: str) -> None:
        """Replace (report) or append to (CI file) the file with `text`, atomically."""
        try:
            if self.append:
                append_once(self.path, text)
            else:
                replace_atomically(self.path, text)
        except OSError as error:
            raise self.error(error.strerror or str(error)) from None


def append_once(path: Path, text: str) -> None:
    """One write(2) on an O_APPEND descriptor: concurrent appenders never interleave."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a full disk; a regular file takes it whole otherwise
            raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
    finally:
        os.close(fd)


def replace_atomically(path: Path, text: str) -> None:
    """Write a temp file next to `path`, fsync it, rename it over `path`."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp's 0600 would surprise a report reader
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
