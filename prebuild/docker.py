"""Every call into Docker/buildx, through python-on-whales, in one place.

Callers pass typed requests; DockerException never escapes this module: it becomes a
DockerError carrying the tail of buildx's output and a hint. Each command is echoed to
stderr as `$> ...` (no secrets ever reach argv: registry credentials live in the docker
config, S3 credentials in the environment).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.client_config import ClientNotFoundError
from python_on_whales.exceptions import DockerException

from prebuild import progress as progress_mod
from prebuild.errors import DockerError

CacheEntry = Mapping[str, str]


@dataclass(frozen=True)
class BuildRequest:
    """One `docker buildx build`; every field maps to one buildx flag."""

    context: Path
    dockerfile: Path
    tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    build_contexts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    cache_from: tuple[CacheEntry, ...] = ()
    cache_to: CacheEntry | None = None
    push: bool = False
    load: bool = False
    builder: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        """The equivalent command line, for the `$>` echo and for users to reproduce."""
        args = ["docker", "buildx", "build", "--progress=plain"]
        if self.builder:
            args += ["--builder", self.builder]
        args += ["--file", str(self.dockerfile)]
        if self.target:
            args += ["--target", self.target]
        for name, value in sorted(self.build_args.items()):
            args += ["--build-arg", f"{name}={value}"]
        for name, value in sorted(self.build_contexts.items()):
            args += ["--build-context", f"{name}={value}"]
        for name, value in sorted(self.labels.items()):
            args += ["--label", f"{name}={value}"]
        if self.platforms:
            args += ["--platform", ",".join(self.platforms)]
        for entry in self.cache_from:
            args += ["--cache-from", _csv(entry)]
        if self.cache_to:
            args += ["--cache-to", _csv(self.cache_to)]
        output = self.output()
        if output:
            args += ["--output", _csv(output)]
        for tag in self.tags:
            args += ["--tag", tag]
        if self.load:
            args.append("--load")
        return [*args, str(self.context)]

    def output(self) -> dict[str, str]:
        """An explicit image exporter when pushing (annotations need it); else buildx's default."""
        if not self.push:
            return {}
        # buildx fills `name` from --tag itself (a comma-joined name would break its CSV parser)
        out = {"type": "image", "push": "true"}
        out.update({f"annotation.{k}": v for k, v in sorted(self.annotations.items())})
        return out


@dataclass
class BuildResult:
    progress: progress_mod.Progress
    output_tail: list[str]


def _csv(entry: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in entry.items())


def echo(argv: Sequence[str]) -> None:
    print("$> " + shlex.join(argv), file=sys.stderr, flush=True)


@lru_cache(maxsize=4)
def client(host: str | None = None) -> DockerClient:
    """A client for DOCKER_HOST (or `host`), with the DOCKER_CONFIG in force."""
    host = host or os.environ.get("DOCKER_HOST") or None
    config = os.environ.get("DOCKER_CONFIG") or None
    return DockerClient(host=host, config=config)


def _fail(what: str, error: DockerException, hint: str | None = None) -> DockerError:
    text = (error.stderr or "") + (error.stdout or "")
    tail = "\n".join(line for line in text.strip().splitlines()[-12:])
    return DockerError(f"{what} failed (exit {error.return_code}):\n{tail}", hint=hint)


def build(
    request: BuildRequest, *, on_line: Callable[[str], None] | None = None, quiet: bool = False
) -> BuildResult:
    """Run the build, streaming plain progress to `on_line`; raise DockerError on failure."""
    if not quiet:
        echo(request.argv())
    lines: list[str] = []
    try:
        stream: Iterator[str] = client().buildx.build(
            context_path=request.context,
            file=request.dockerfile,
            tags=list(request.tags),
            target=request.target,
            build_args=dict(request.build_args),
            build_contexts=dict(request.build_contexts),
            labels=dict(request.labels),
            platforms=list(request.platforms) or None,
            cache_from=[dict(e) for e in request.cache_from] or None,
            cache_to=dict(request.cache_to) if request.cache_to else None,
            output=request.output(),
            load=request.load,
            builder=request.builder,
            progress="plain",
            provenance=False,
            stream_logs=True,
        )
        for line in stream:
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
    except DockerException as error:
        parsed = progress_mod.parse(lines)
        failing = [s.error for s in parsed.steps if s.error]
        raise DockerError(
            "docker buildx build failed"
            + (f": {failing[0]}" if failing else f" (exit {error.return_code})")
            + "\n"
            + "\n".join(x.rstrip() for x in lines[-15:]),
        ) from error
    return BuildResult(progress=progress_mod.parse(lines), output_tail=lines[-15:])


def builder_driver(builder: str | None) -> str:
    """The buildx driver of `builder` (docker, docker-container, remote, kubernetes)."""
    try:
        return str(client().buildx.inspect(builder).driver)
    except DockerException as error:
        raise _fail(f"docker buildx inspect {builder or ''}".strip(), error) from error


def native_platform(builder: str | None) -> str:
    """The builder's first platform (what a bare `linux` means), e.g. linux/amd64."""
    try:
        nodes = client().buildx.inspect(builder).nodes
    except DockerException as error:
        raise _fail("docker buildx inspect", error) from error
    except ClientNotFoundError as error:
        raise DockerError("the docker client was not found on PATH") from error
    for node in nodes:
        if node.platforms:
            return str(node.platforms[0])
    raise DockerError(f"builder {builder or 'default'} reports no platforms")


def pull(ref: str, *, quiet: bool = False) -> None:
    if not quiet:
        echo(["docker", "pull", ref])
    try:
        client().image.pull(ref, quiet=True)
    except DockerException as error:
        raise _fail(f"docker pull {ref}", error) from error


def tag(source: str, target: str) -> None:
    echo(["docker", "tag", source, target])
    try:
        client().image.tag(source, target)
    except DockerException as error:
        raise _fail(f"docker tag {source} {target}", error) from error


def image_exists(ref: str) -> bool:
    return bool(client().image.exists(ref))
