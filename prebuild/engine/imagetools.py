"""The index that joins per-platform pushes: `docker buildx imagetools create`.

Server-side: the registry gets one new index naming manifests it already has; no layer is
pulled or pushed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prebuild.engine import buildx


def create(
    tags: Sequence[str], sources: Sequence[str], annotations: Mapping[str, str] | None = None
) -> None:
    """Write every tag as one index of the sources' manifests (indexes are flattened)."""
    argv = ["docker", "buildx", "imagetools", "create"]
    for name, value in sorted((annotations or {}).items()):
        argv += ["--annotation", f"index:{name}={value}"]
    for tag in tags:
        argv += ["--tag", tag]
    argv += list(sources)
    buildx.echo(argv)
    buildx._run(argv, "docker buildx imagetools create")
