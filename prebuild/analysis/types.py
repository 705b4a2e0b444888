"""What a Dockerfile reads from outside itself: the value types every analysis stage shares.

Kept apart from the parser so that `parse` and `stages` both import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PLATFORM_ARGS = (
    "BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT",
)  # fmt: skip


RefKind = Literal["from", "copy-from", "mount-from"]  # where a Dockerfile names an image


@dataclass(frozen=True)
class ExternalRef:
    """An image read from outside the build context."""

    ref: str  # as written, after ARG expansion
    line: int
    kind: RefKind


@dataclass(frozen=True)
class ContextSource:
    """A COPY/ADD source (or RUN bind-mount source) read from the build context."""

    pattern: str  # Go glob relative to the context root; "" means the whole context
    line: int
    excludes: tuple[str, ...] = ()  # COPY/ADD --exclude, relative to each matched source
    parents: bool = False  # COPY --parents: pattern is a patternmatcher include (`**` allowed)
    pivot: str = ""  # COPY --parents: the part before "/./"; pattern and excludes are below it
