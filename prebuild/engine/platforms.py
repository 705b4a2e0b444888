"""What a bare `linux` platform means: the builder's native architecture."""

from __future__ import annotations

import platform

from prebuild.engine import buildx
from prebuild.errors import DockerError

_MACHINE_TO_PLATFORM = {
    "x86_64": "linux/amd64",
    "amd64": "linux/amd64",
    "aarch64": "linux/arm64",
    "arm64": "linux/arm64",
    "armv7l": "linux/arm/v7",
    "riscv64": "linux/riscv64",
    "ppc64le": "linux/ppc64le",
    "s390x": "linux/s390x",
}


def host_platform() -> str:
    machine = platform.machine().lower()
    return _MACHINE_TO_PLATFORM.get(machine, f"linux/{machine}")


def native(builder: str | None, *, ask_builder: bool = True) -> str:
    """The builder's native platform; the host's when the builder cannot be asked (offline
    planning on a machine without an engine)."""
    if ask_builder:
        try:
            found = buildx.native_platform(builder)
            parts = found.split("/")
            return "/".join(parts[:2]) if parts[1] == "amd64" else found  # amd64/v2.. are amd64
        except DockerError:
            pass
    return host_platform()
