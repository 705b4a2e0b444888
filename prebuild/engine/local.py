"""The engine a runner pulls into: docker (the default) or podman, behind one small interface.

`prebuild pull --engine docker|podman` (env PREBUILD_ENGINE). Without either, docker; podman
when podman is installed and docker is not (a podman-only runner needs no setting).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

from prebuild.engine import buildx, platforms, podman
from prebuild.engine.buildx import BuildRequest
from prebuild.errors import UsageError

EngineName = Literal["docker", "podman"]
ENGINES: tuple[EngineName, ...] = ("docker", "podman")


def choose(explicit: str | None, env: Mapping[str, str] | None = None) -> EngineName:
    env = os.environ if env is None else env
    value = (explicit or env.get("PREBUILD_ENGINE") or "").strip().lower()
    if value:
        if value not in ENGINES:
            raise UsageError(
                f"unknown engine {value!r} (from {'--engine' if explicit else 'PREBUILD_ENGINE'})",
                hint="use docker or podman",
            )
        return cast(EngineName, value)
    if shutil.which("docker") is None and shutil.which("podman") is not None:
        return "podman"
    return "docker"


@dataclass(frozen=True)
class Local:
    """What the runner hook asks of its engine: platform, pull, tag, answer, build."""

    name: EngineName = "docker"
    builder: str | None = None  # buildx builder (docker only)
    insecure: tuple[str, ...] = ()  # registries podman may reach over plain HTTP

    @property
    def reads_buildkit_cache(self) -> bool:
        return self.name == "docker"

    def native_platform(self) -> str:
        if self.name == "podman":
            return podman.native_platform()
        return platforms.native(self.builder)

    def pull(self, ref: str, *, platform: str | None) -> None:
        if self.name == "podman":
            podman.pull(ref, platform=platform, verify=podman.tls_verify(ref, self.insecure))
        else:
            buildx.pull(ref, platform=platform)

    def has(self, ref: str, digest: str | None, *, platform: str | None) -> bool:
        """Is `ref` already local exactly as the registry holds it (nothing to pull)?"""
        return self.name == "docker" and buildx.has_local(ref, digest, platform=platform)

    def tag(self, source: str, target: str) -> None:
        (podman.tag if self.name == "podman" else buildx.tag)(source, target)

    def ping(self, timeout: float) -> bool:
        return podman.ping() if self.name == "podman" else buildx.ping(timeout)

    def build(self, request: BuildRequest, *, on_line: Callable[[str], None]) -> str:
        """Build into the local store; the cache hits as text (and podman's caveat)."""
        if self.name == "podman":
            # every image a build starts FROM is pinned as a build context (docker-image://REF)
            pins = [ref.split("://", 1)[-1] for ref in request.build_contexts.values()]
            verify = all(podman.tls_verify(ref, self.insecure) for ref in pins)
            steps = podman.build(request, verify=verify, on_line=on_line)
            return f"cache {steps.cached}/{steps.total} steps; {podman.NO_BUILDKIT_CACHE}"
        built = buildx.build(request, on_line=on_line)
        return f"cache {built.progress.cached}/{built.progress.total} steps"
