"""s3-sync transfers show their progress the way the terminal wants it: throttled plain lines
in a CI log, a bar in the live table on a TTY.

Short loops print nothing (prebuild.progress.QUIET_SECONDS), so S3 is made slow the way a far
bucket is: a proxy in front of moto holds every request for DELAY seconds, and one upload at a
time makes each transfer outlast the quiet period. prebuild reaches the proxy through
PREBUILD_S3_ENDPOINT_URL, the config keeps naming the stack's S3.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cachecheck import new_bucket, project, s3_cache
from tests.integration.conftest import Stack, wipe_engine
from tests.integration.faults.proxy import FaultProxy, fault_proxy

DELAY = 0.3  # seconds per S3 request: >= 5 blobs of a request or two, well over 2 s quiet
INPUTS = ("a.txt", "b.txt", "c.txt", "d.txt")  # 9 steps: about 10 blobs
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


@pytest.fixture
def slow_s3(stack: Stack) -> Iterator[FaultProxy]:
    with fault_proxy(stack.s3_endpoint.removeprefix("http://")) as proxy:
        proxy.set("delay", delay=DELAY)
        yield proxy


def slow_project(tmp_path: Path, stack: Stack, unique: str) -> Path:
    new_bucket(stack, unique)
    cache = s3_cache(unique) + "upload_parallelism = 1\n"  # the last table is [cache.s3]
    return project(
        tmp_path / "repo",
        stack,
        registry=f"{stack.registry}/{unique}",
        cache=cache,
        images={"app": INPUTS},
    )


def env(stack: Stack, proxy: FaultProxy) -> dict[str, str]:
    return stack.run_env(PREBUILD_S3_ENDPOINT_URL=f"http://{proxy.address}")


def counts(stderr: str, what: str) -> list[tuple[int, int, bool]]:
    """(done, total, finished) of each plain progress line of `what` for image app."""
    line = re.compile(rf"^\d\d:\d\d:\d\d \[app\] {re.escape(what)}: blobs: (\d+)/(\d+)( done)?$")
    found = [line.match(text) for text in stderr.splitlines()]
    return [(int(m[1]), int(m[2]), bool(m[3])) for m in found if m]


def check_lines(stderr: str, what: str) -> None:
    """A few lines while it runs, counting up, then the end: never a bar, never silence."""
    seen = counts(stderr, what)
    assert len(seen) >= 2, f"no progress lines for {what!r}:\n{stderr[-3000:]}"
    *running, (done, total, finished) = seen
    assert finished and done == total >= 5, seen
    assert running and not any(f for _, _, f in running), seen
    assert 0 < running[0][0] < total, seen  # said while it ran, not only at the end
    assert [d for d, _, _ in running] == sorted({d for d, _, _ in running}), seen  # counting up


def test_s3_sync_transfers_print_plain_progress_lines_off_a_tty(
    stack: Stack, slow_s3: FaultProxy, tmp_path: Path, unique: str
) -> None:
    repo = slow_project(tmp_path, stack, unique)
    wipe_engine(stack.docker)
    # no --plain: stderr is a pipe, which is what picks the plain display
    argv = [sys.executable, "-m", "prebuild", "build", "app"]
    first = subprocess.run(
        argv, cwd=repo, env=env(stack, slow_s3), capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stderr[-3000:]
    check_lines(first.stderr, f"s3-sync upload to s3://{unique}/cache/")
    assert "━" not in first.stderr and "\x1b[" not in first.stderr  # no bar, no escapes
    assert any(r.startswith("PUT /") and "/manifests/app" in r for r in slow_s3.requests)

    # a fresh runner: the cache comes back from S3, and the download says so too
    wipe_engine(stack.docker)
    slow_s3.set("delay", delay=DELAY)
    again = subprocess.run(
        [*argv, "--force"],
        cwd=repo,
        env=env(stack, slow_s3),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    check_lines(again.stderr, f"s3-sync download from s3://{unique}/cache/manifests/app")


def run_on_a_pty(argv: list[str], cwd: Path, environ: dict[str, str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal 160 columns wide; (exit code, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(
        argv, cwd=cwd, env=environ, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    return proc.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def test_s3_sync_upload_is_a_bar_on_a_tty(
    stack: Stack, slow_s3: FaultProxy, tmp_path: Path, unique: str
) -> None:
    repo = slow_project(tmp_path, stack, unique)
    wipe_engine(stack.docker)
    environ = {**env(stack, slow_s3), "TERM": "xterm-256color", "COLUMNS": "160"}
    environ.pop("NO_COLOR", None)
    code, output = run_on_a_pty([sys.executable, "-m", "prebuild", "build", "app"], repo, environ)
    assert code == 0, output[-3000:]
    screen = ANSI.sub("", output)
    assert f"s3-sync upload to s3://{unique}/cache/: blobs" in screen, screen[-3000:]
    bars = [(int(d), int(t)) for d, t in re.findall(r"━\s*(\d+)/(\d+)", screen)]
    assert any(0 < done < total for done, total in bars), bars  # drawn while it ran
    assert not re.search(r"blobs: \d+/\d+", screen)  # not the plain lines
