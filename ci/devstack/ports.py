"""Keep the kernel from lending the stack's fixed ports to outgoing connections.

The stack listens on fixed loopback ports (35000 and up) that sit inside Linux's ephemeral
range (32768-60999): under load an outgoing connection of any process can hold one of them for
a moment, and a registry starting then fails with "address already in use". Adding them to
net.ipv4.ip_local_reserved_ports keeps them for listeners. Best effort: without the right to
write the sysctl the stack still starts, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

RESERVED = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def parse(text: str) -> set[int]:
    """The ports of a reserved-ports list such as "35000-35006,36000"."""
    ports: set[int] = set()
    for part in text.replace("\n", "").split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit():
            ports.update(range(int(low), int(high or low) + 1))
    return ports


def render(ports: Iterable[int]) -> str:
    """Ports as the sysctl wants them: sorted, runs collapsed into ranges."""
    runs: list[list[int]] = []
    for port in sorted(set(ports)):
        if runs and port == runs[-1][1] + 1:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def reserve(ports: Iterable[int], say: Callable[[str], None], path: Path = RESERVED) -> None:
    """Add these ports to the reserved list, keeping every entry already there."""
    try:
        current = parse(path.read_text())
        wanted = current | set(ports)
        if wanted != current:
            path.write_text(render(wanted))
    except OSError as error:
        say(
            f"note: cannot reserve the stack's ports ({error.strerror}); they may clash with "
            "outgoing connections under load"
        )
