"""Human durations ("90s", "12h", "7d", "1d12h") as used by refresh, gc and S3 touch settings.

Strict on purpose: a typo like "7days" or a bare number must be an error, not a silent default.
"""

from __future__ import annotations

import re

UNITS: dict[str, int] = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}

_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
EXAMPLE = "a duration like '90s', '30m', '12h', '7d', '2w' or '1d12h'"


def parse_duration(text: str) -> int:
    """Seconds in `text`; ValueError (with the accepted forms) for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"expected {EXAMPLE}, got {type(text).__name__} {text!r}")
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected {EXAMPLE} (units in w d h m s order)"
        )
    seconds = sum(int(n) * UNITS[u] for n, u in zip(match.groups(), UNITS, strict=True) if n)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    return seconds


def format_duration(seconds: int) -> str:
    """Inverse of parse_duration, for messages ("1d12h")."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
