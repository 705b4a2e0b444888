"""prebuild.deadline: budgets, the per-command defaults, and the socket watchdog."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from prebuild import deadline as deadlines
from prebuild.errors import UsageError


def test_remaining_cap_within() -> None:
    budget = deadlines.Deadline(10, "plan")
    assert 9 < budget.remaining() <= 10
    assert budget.cap(3) == 3
    assert 9 < (budget.cap(None) or 0) <= 10
    assert budget.within(2).end < budget.end
    assert budget.within(100).end == budget.end
    assert budget.describe() == "10s plan deadline"
    assert deadlines.Deadline(None).cap(None) is None
    assert deadlines.Deadline(0.0).expired()


def test_scope_sets_and_restores_current() -> None:
    outer = deadlines.current()
    budget = deadlines.Deadline(5, "gc")
    with deadlines.scope(budget):
        assert deadlines.current() is budget
        seen: list[deadlines.Deadline] = []
        worker = threading.Thread(target=lambda: seen.append(deadlines.current()))
        worker.start()
        worker.join()
        assert seen == [budget]  # worker threads see the command's deadline
    assert deadlines.current() is outer


@pytest.mark.parametrize(
    ("option", "env", "seconds"),
    [(None, None, 120.0), ("90", None, 90.0), ("2m", None, 120.0), (None, "1h", 3600.0),
     ("30s", "1h", 30.0)],
)  # fmt: skip
def test_for_command(monkeypatch, option, env, seconds) -> None:
    if env is None:
        monkeypatch.delenv(deadlines.ENV, raising=False)
    else:
        monkeypatch.setenv(deadlines.ENV, env)
    assert deadlines.for_command("plan", option).seconds == seconds


@pytest.mark.parametrize("text", ["soon", "-5", "0", "7days"])
def test_for_command_rejects_garbage(text: str) -> None:
    with pytest.raises(UsageError, match="--deadline"):
        deadlines.for_command("plan", text)


def test_watch_shuts_a_trickled_read_down_at_its_deadline() -> None:
    left, right = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                right.send(b"x")
            except OSError:
                return
            time.sleep(0.05)

    threading.Thread(target=trickle, daemon=True).start()
    left.settimeout(5)  # each recv gets a byte well within this: only the watchdog ends it
    started = time.monotonic()
    token = deadlines.WATCH.arm(started + 0.5, lambda: left)
    received = b""
    while chunk := left.recv(1):
        received += chunk
    assert deadlines.WATCH.disarm(token) is True
    assert 0.4 < time.monotonic() - started < 2
    assert received  # it was being fed all along
    stop.set()
    left.close()
    right.close()


def test_disarmed_watch_never_fires() -> None:
    left, right = socket.socketpair()
    token = deadlines.WATCH.arm(time.monotonic() + 0.1, lambda: left)
    assert deadlines.WATCH.disarm(token) is False
    right.send(b"ok")
    time.sleep(0.2)  # past the disarmed deadline: the socket must still work
    assert left.recv(2) == b"ok"
    left.close()
    right.close()
