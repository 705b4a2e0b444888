"""One image's outcome in a build run: what the scheduler returns and every report renders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["built", "skipped", "failed", "blocked", "planned", "interrupted"]
OUTCOMES: tuple[Outcome, ...] = ("built", "skipped", "failed", "blocked")


@dataclass
class ImageResult:
    name: str
    status: Outcome
    key: str | None = None
    ref: str | None = None
    seconds: float = 0.0
    cache_hits: int = 0
    cache_steps: int = 0
    reason: str = ""
    error_tail: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    started_at: float | None = None  # wall clock (epoch seconds): the report's build timeline
    why: list[str] = field(default_factory=list)  # what changed since the last key (report.why)
    size: int | None = None  # bytes of the pushed image (config + layers, every platform)


def exit_code(results: Sequence[ImageResult]) -> int:
    return 1 if any(r.status in ("failed", "blocked", "interrupted") for r in results) else 0


def counts(results: Sequence[ImageResult]) -> dict[str, int]:
    return {s: sum(1 for r in results if r.status == s) for s in OUTCOMES}
