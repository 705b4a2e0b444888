"""Emulation set-up touches only its own binfmt_misc entries and is idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from devstack import emulation
from devstack.procs import StackError


@pytest.fixture
def binfmt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /proc/sys/fs/binfmt_misc, mounted, with one unrelated entry."""
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "python3.11").write_text("disabled\ninterpreter /usr/bin/python3.11\n")
    monkeypatch.setattr(emulation, "BINFMT", tmp_path)
    monkeypatch.setattr(emulation, "LOCK", tmp_path / "lock")
    return tmp_path


def test_a_disabled_entry_is_re_enabled_and_others_are_left_alone(binfmt: Path) -> None:
    (binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/x\nflags: PF\n")
    (binfmt / "qemu-s390x").write_text("disabled\ninterpreter /usr/libexec/y\nflags: PF\n")
    assert emulation.state("qemu-s390x") == "disabled"
    # A real entry turns the written "1" into "enabled"; the stand-in just records the write.
    emulation._enable("qemu-s390x")
    assert (binfmt / "qemu-s390x").read_text() == "1"
    assert (binfmt / "qemu-aarch64").read_text().startswith("enabled")
    assert (binfmt / "python3.11").read_text().startswith("disabled")


def test_nothing_is_written_when_both_entries_are_enabled(binfmt: Path) -> None:
    for entry in emulation.ENTRIES:
        (binfmt / entry).write_text("enabled\nflags: PF\n")
    said: list[str] = []
    assert emulation.ensure(said.append) == ["linux/arm64", "linux/s390x"]
    assert said == []
    assert emulation.summary() == "linux/arm64 enabled, linux/s390x enabled"


def test_a_kernel_that_refuses_the_mount_gets_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulation, "BINFMT", tmp_path / "absent")
    monkeypatch.setattr(emulation, "LOCK", tmp_path / "lock")
    monkeypatch.setattr(emulation.subprocess, "run", _fails)
    with pytest.raises(StackError) as caught:
        emulation.ensure(print)
    text = str(caught.value)
    assert text.startswith("the kernel refused mounting binfmt_misc")
    assert "permission denied" in text and "--privileged" in text


def _fails(argv, **kwargs):
    class Proc:
        returncode = 32
        stderr = "mount: permission denied"
        stdout = ""

    return Proc()
