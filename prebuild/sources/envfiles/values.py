"""Known and unknown values of the partial evaluator.

A value is either a `str` (known exactly, with bash's semantics) or an `Unknown` that carries
the `Cause`: the file and line of the construct that made it unknown. Nothing is ever guessed,
so an Unknown is never replaced by a default downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NESTING = 48  # ${...}/$(...)/if/eval/source nesting the reader follows (bash: more)


@dataclass(frozen=True)
class Cause:
    """Where a value became unknown, and the construct that did it."""

    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.what})"


@dataclass(frozen=True)
class Unknown:
    """A value the reader cannot know without running the file (maybe even unset)."""

    cause: Cause


Value = str | Unknown


def first_unknown(values: list[Value]) -> Unknown | None:
    for value in values:
        if isinstance(value, Unknown):
            return value
    return None


def concat(values: list[Value]) -> Value:
    """Known pieces joined, or the first unknown piece (its cause explains the whole)."""
    unknown = first_unknown(values)
    if unknown is not None:
        return unknown
    return "".join(v for v in values if isinstance(v, str))


def word_list(text: str) -> list[str]:
    """The whitespace-separated words of a literal block: how builtin tables are written."""
    return text.split()
