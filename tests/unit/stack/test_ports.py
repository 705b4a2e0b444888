"""The stack reserves its ports without dropping what the machine reserved already."""

from __future__ import annotations

from pathlib import Path

from devstack import ports


def test_reserve_merges_with_existing_entries(tmp_path: Path) -> None:
    sysctl = tmp_path / "ip_local_reserved_ports"
    sysctl.write_text("8080,35001-35003\n")
    ports.reserve([35000, 35004, 35005, 36000], print, path=sysctl)
    assert sysctl.read_text() == "8080,35000-35005,36000"
    assert ports.parse(sysctl.read_text()) == {8080, 36000, *range(35000, 35006)}


def test_reserve_is_best_effort_without_the_sysctl(tmp_path: Path) -> None:
    said: list[str] = []
    ports.reserve([35000], said.append, path=tmp_path / "missing")
    assert said and "cannot reserve" in said[0]
