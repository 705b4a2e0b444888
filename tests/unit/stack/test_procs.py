"""The local stack's orphan cleanup kills only its own engine, never another stack's.

Stacks with different state dirs share one PREBUILD_STACK_CACHE (the unpacked engine), so
"runs a binary from the shared prefix" also matches every other stack's healthy dockerd,
containerd and shims: `up` after an unclean kill used to kill them all.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import procs


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A private prefix holding a copy of sh (what an unpacked engine prefix looks like)."""
    bindir = tmp_path / "prefix" / "usr" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(shutil.which("sh") or "/bin/sh", bindir / "sh")
    return tmp_path / "prefix"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs_started: list[subprocess.Popen[bytes]] = []
    yield procs_started
    for proc in procs_started:
        proc.kill()
        proc.wait()


def run_from(prefix: Path, started: list[subprocess.Popen[bytes]], *args: str) -> int:
    """A process run from `prefix` with `args` in its command line, blocked on stdin."""
    proc = subprocess.Popen(
        [str(prefix / "usr/bin/sh"), "-c", "read line", *args], stdin=subprocess.PIPE
    )
    started.append(proc)
    return proc.pid


def test_orphans_are_the_processes_naming_this_stacks_run_dir(
    prefix: Path, started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    ours = tmp_path / "run" / "prebuild-aaa"
    dockerd = run_from(prefix, started, f"--exec-root={ours}/exec", "--iptables=false")
    shim = run_from(prefix, started, "-address", f"{ours}/exec/containerd/containerd.sock")
    run_from(prefix, started, f"--exec-root={tmp_path}/run/prebuild-bbb/exec")  # another stack
    run_from(prefix, started, f"--exec-root={ours}b/exec")  # a longer sibling name
    run_from(prefix, started, "no", "marker")

    assert sorted(procs.orphans_of(prefix, ours)) == sorted([dockerd, shim])


def test_a_process_outside_the_prefix_is_never_an_orphan(
    prefix: Path, started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    ours = tmp_path / "run" / "prebuild-aaa"
    proc = subprocess.Popen(["sh", "-c", "read line", f"{ours}/exec"], stdin=subprocess.PIPE)
    started.append(proc)
    assert procs.orphans_of(prefix, ours) == []


def test_up_refuses_a_port_someone_else_serves() -> None:
    """Another checkout's registry on our port must not pass for ours."""
    import socket

    from devstack import cli, procs

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(
            procs.StackError, match=f"port {port} for the registry is already in use"
        ):
            cli._require_free_port("registry", port, "PREBUILD_STACK_REGISTRY_PORT")
    cli._require_free_port("registry", port, "PREBUILD_STACK_REGISTRY_PORT")  # free again
