"""Byte counts for people: one rendering for gc reports and run summaries."""

from __future__ import annotations


def human_bytes(size: int) -> str:
    """Decimal units, like registries and S3 consoles show them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
