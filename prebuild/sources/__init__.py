"""Image sources: ways to declare images besides native `[[image]]` tables.

Each source kind is a pydantic model (validated as part of the config, so its errors are
located like any other key) with one method, `images`, that turns it into ImageSpecs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from prebuild.model import ImageSpec


class SourceDefaults(Protocol):
    """What a source needs from the rest of the config to build ImageSpecs."""

    def image_defaults(self) -> dict[str, object]: ...


class Source(Protocol):
    kind: str

    def images(self, *, repo_root: Path, config_file: Path, defaults: ImageSpec) -> list[ImageSpec]:
        """ImageSpecs for this source; `defaults` carries the project-wide image defaults
        (cache, tags, labels, refresh, platforms) to start from (use dataclasses.replace)."""
        ...
