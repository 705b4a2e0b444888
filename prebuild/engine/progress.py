"""Read BuildKit's plain progress output: which build steps ran and which came from cache.

`--progress=plain` is stable, line-oriented and printed by every buildx version we support,
so reports and tests use it instead of timing (a cache hit is what BuildKit says it is).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_VERTEX = re.compile(r"^#(\d+) (.*)$")
_STEP_NAME = re.compile(r"^\[(?:(?P<stage>[^\]]+) )?(?P<n>\d+)/(?P<m>\d+)\] (?P<cmd>\S+)")
_LOG = re.compile(r"^\d+\.\d+ ")
_TRANSFER = re.compile(r"^(sha256:[0-9a-f]{64}|extracting sha256:)")
_BUILD_COMMANDS = {"RUN", "COPY", "ADD", "WORKDIR"}


@dataclass
class Step:
    """One build step (a vertex named like `[stage 2/5] RUN ...`)."""

    number: int
    name: str
    command: str
    said_cached: bool = False
    done: bool = False
    error: str | None = None
    logged: bool = False  # the step's process printed output: it ran
    pulled: bool = False  # layer blobs were fetched for it (a lazily imported cache hit)

    @property
    def cached(self) -> bool:
        """BuildKit prints CACHED for most hits, but a hit whose layers must be fetched from a
        registry cache (the last step of a chain, typically) shows only the blob downloads and
        DONE. A step that printed nothing and only fetched blobs did not run."""
        return self.said_cached or (self.pulled and not self.logged and self.error is None)


@dataclass
class Progress:
    steps: list[Step] = field(default_factory=list)

    @property
    def build_steps(self) -> list[Step]:
        """RUN/COPY/ADD/WORKDIR steps: the ones a cache hit saves (FROM is a pull)."""
        return [s for s in self.steps if s.command in _BUILD_COMMANDS]

    @property
    def cached(self) -> int:
        return sum(1 for s in self.build_steps if s.cached)

    @property
    def total(self) -> int:
        return len(self.build_steps)

    def step(self, fragment: str) -> Step:
        """The build step whose name contains `fragment` (for tests and explain output)."""
        matches = [s for s in self.steps if fragment in s.name]
        if len(matches) != 1:
            raise LookupError(
                f"{len(matches)} steps match {fragment!r}: {[s.name for s in self.steps]}"
            )
        return matches[0]


def parse(lines: Iterable[str]) -> Progress:
    """Fold plain progress lines into steps; a step seen twice (multi-platform) keeps both."""
    progress = Progress()
    by_number: dict[int, Step] = {}
    for raw in lines:
        match = _VERTEX.match(raw.rstrip("\n"))
        if not match:
            continue
        number, text = int(match.group(1)), match.group(2)
        step = by_number.get(number)
        if step is None:
            name = _STEP_NAME.match(text)
            if not name:
                continue
            step = Step(number=number, name=text, command=name.group("cmd").upper())
            by_number[number] = step
            progress.steps.append(step)
        elif text == "CACHED":
            step.said_cached = True
        elif _LOG.match(text):
            step.logged = True
        elif _TRANSFER.match(text):
            step.pulled = True
        elif text.startswith("DONE"):
            step.done = True
        elif text.startswith("ERROR"):
            step.error = text
    return progress
