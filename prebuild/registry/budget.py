"""The time budget of one registry call: every request and retry of it shares one end."""

from __future__ import annotations

import time

from prebuild import deadline as deadlines


class Call:
    """The time budget of one public call, shared by all its requests and retries: its own
    `deadline` seconds, never past the command's deadline."""

    def __init__(self, deadline: float, command: deadlines.Deadline | None = None) -> None:
        self.start = time.monotonic()
        self.command = command or deadlines.current()
        self.end = min(self.start + deadline, self.command.end)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return self.end - time.monotonic()
