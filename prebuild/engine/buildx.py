"""Every call into Docker/buildx in one place.

Callers pass typed requests; no docker failure escapes this module except as a DockerError
carrying the tail of the command's output and a hint. Each command is echoed to stderr as
`$> ...` (no secrets ever reach argv: registry credentials live in the docker config, S3
credentials in the environment).

Builds stream through python-on-whales, imported only when a build runs. The runner hook's
calls (pull, tag, the native platform) run the docker CLI directly: importing
python-on-whales (and pydantic with it) costs more than the commands themselves, and the hook
sits on every CI job's critical path. Tagging and asking the engine's platform go one step
further when the engine is certainly the local unix socket the CLI would use: one Engine API
request instead of starting the CLI (the CLI remains the fallback for everything else).
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from prebuild import deadline as deadlines
from prebuild.engine import process, unixsocket
from prebuild.engine import progress as progress_mod
from prebuild.engine.locations import docker_config_dir
from prebuild.errors import DockerError

if TYPE_CHECKING:
    from python_on_whales import DockerClient

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
    no_cache: bool = False  # a refresh: re-run every step (cache_to still exports the result)

    def argv(self) -> list[str]:
        """The equivalent command line, for the `$>` echo and for users to reproduce."""
        args = ["docker", "buildx", "build", "--progress=plain", "--provenance=false"]
        if self.builder:
            args += ["--builder", self.builder]
        args += self.shared_args()
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
        if self.no_cache:
            args.append("--no-cache")
        return [*args, str(self.context)]

    def shared_args(self) -> list[str]:
        """The flags `docker buildx build` and `podman build` spell alike: file, target, build
        args, build contexts, labels, platforms (sorted, so the argv is stable)."""
        args = ["--file", str(self.dockerfile)]
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
        return args

    def output(self) -> dict[str, str]:
        """An explicit image exporter when pushing (annotations need it); else buildx's default."""
        if not self.push:
            return {}
        # buildx fills `name` from --tag itself (a comma-joined name would break its CSV parser)
        out = {"type": "image", "push": "true"}
        if self.annotations:  # a Docker v2 manifest cannot carry annotations: push OCI
            out["oci-mediatypes"] = "true"
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
    from python_on_whales import DockerClient

    host = host or os.environ.get("DOCKER_HOST") or None
    config = os.environ.get("DOCKER_CONFIG") or None
    return DockerClient(host=host, config=config)


def _failure(what: str, code: int, stdout: str, stderr: str, hint: str | None) -> DockerError:
    text = (stderr or "") + (stdout or "")
    tail = "\n".join(line for line in text.strip().splitlines()[-12:])
    return DockerError(f"{what} failed (exit {code}):\n{tail}", hint=hint)


# A question to the engine (its version, the builder's platforms) answers in milliseconds; an
# engine that takes longer than this is not going to answer at all.
QUICK = 15.0
_silent = False  # a quick question already went unanswered: the engine is not answering


def _quick() -> float:
    """The limit of one quick question: QUICK, and at most a third of what the deadline
    leaves (a silent engine must not eat the whole budget of a runner hook)."""
    left = deadlines.current().remaining()
    return min(QUICK, max(0.5, left / 3))


def _went_silent() -> None:
    global _silent
    _silent = True


def _run(
    argv: Sequence[str], what: str, hint: str | None = None, *, timeout: float | None = None
) -> str:
    """Run one docker CLI command (DOCKER_HOST / DOCKER_CONFIG from the environment, as
    `client()` uses them); its stdout, or a DockerError with the tail of its output. Killed
    (its whole process group) after `timeout` or when the command's deadline passes."""
    try:
        code, stdout, stderr = process.run(argv, timeout=timeout)
    except process.EngineTimeout:
        if timeout is not None:  # only a quick question says the engine is silent
            _went_silent()
        raise
    if code != 0:
        raise _failure(what, code, stdout, stderr, hint)
    return stdout


def build(
    request: BuildRequest, *, on_line: Callable[[str], None] | None = None, quiet: bool = False
) -> BuildResult:
    """Run the build, streaming plain progress to `on_line`; raise DockerError on failure."""
    argv = request.argv()
    if not quiet:
        echo(argv)
    # The CLI itself, not python-on-whales: the build must run in its own process group so a
    # deadline or Ctrl-C kills it (and whatever buildx started) as a whole.
    code, lines = process.stream(argv, on_line or (lambda _: None))
    if code != 0:
        parsed = progress_mod.parse(lines)
        failing = [s.error for s in parsed.steps if s.error]
        # a failure before any step (a base or pinned image not found) has only buildx's own
        # "ERROR: failed to solve: ..." line to say why
        solve = [x.strip() for x in lines if x.startswith("ERROR:")]
        cause = failing[0] if failing else (solve[-1] if solve else None)
        raise DockerError(
            "docker buildx build failed"
            + (f": {cause}" if cause else f" (exit {code})")
            + "\n"
            + "\n".join(x.rstrip() for x in lines[-15:]),
        )
    return BuildResult(progress=progress_mod.parse(lines), output_tail=lines[-15:])


def builder_driver(builder: str | None) -> str:
    """The buildx driver of `builder` (docker, docker-container, remote, kubernetes).

    The engine's own builder is the `docker` driver by definition; it is taken without asking
    buildx once the engine has answered (so a dead engine still fails here, through buildx).
    """
    if _is_default_builder(builder) and _engine_platform() is not None:
        return "docker"
    return str(_builder(builder).get("Driver") or "")


def native_platform(builder: str | None) -> str:
    """The builder's first platform (what a bare `linux` means), e.g. linux/amd64.

    The engine's own builder (buildx's `default`, driver `docker`) builds for the engine's
    platform, which `docker version` reports in one cheap call; any other builder is asked
    through buildx (two slower calls), as is an engine whose architecture string does not
    name a platform unambiguously (32-bit arm needs the variant only BuildKit reports).
    """
    if _is_default_builder(builder):
        found = _engine_platform()
        if found is not None:
            return found
    for node in _builder(builder).get("Nodes") or []:
        if isinstance(node, dict) and node.get("Platforms"):
            return str(node["Platforms"][0])
    raise DockerError(f"builder {builder or 'default'} reports no platforms")


# Architectures whose `docker version` name is exactly BuildKit's native platform (no variant).
_PLAIN_ARCHES = frozenset({"amd64", "arm64", "ppc64le", "s390x", "riscv64"})


def _engine_platform() -> str | None:
    """`os/arch` of the engine DOCKER_HOST / the docker context points at; None if unsure."""
    answer = _engine_api("GET", "/version")
    if answer is not None and answer[0] == 200:
        try:
            info = json.loads(answer[1])
            found = f"{info['Os']}/{info['Arch']}"
        except (ValueError, KeyError, TypeError):
            return None
    elif _silent:
        return None  # the CLI would wait on the same silent engine
    else:
        try:
            found = _run(
                ["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], "",
                timeout=_quick(),
            )  # fmt: skip
        except DockerError:
            return None  # the buildx path reports the failure in its own words
    os_name, _, arch = found.strip().partition("/")
    return f"linux/{arch}" if os_name == "linux" and arch in _PLAIN_ARCHES else None


def _buildx_dir() -> Path:
    if os.environ.get("BUILDX_CONFIG"):
        return Path(os.environ["BUILDX_CONFIG"])
    return docker_config_dir() / "buildx"


def _is_default_builder(builder: str | None) -> bool:
    """Is the builder in use the engine's own (`default`, driver `docker`)? Only when nothing
    selects another one: no --builder, no $BUILDX_BUILDER, and buildx's `current` file
    (written by `docker buildx use`) absent or naming no instance. Unsure means no."""
    if builder is not None or os.environ.get("BUILDX_BUILDER"):
        return False
    try:
        current = json.loads((_buildx_dir() / "current").read_text())
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return isinstance(current, dict) and not current.get("Name")


def _builder(builder: str | None) -> dict[str, Any]:
    """`docker buildx ls` entry of `builder` (None: the current one), as python-on-whales
    finds it: `buildx inspect` names the builder, `buildx ls` describes it."""
    what = f"docker buildx inspect {builder or ''}".strip()
    if _silent:
        raise DockerError(f"{what}: not asked, the engine did not answer a quick question")
    output = _run(
        ["docker", "buildx", "inspect", *([builder] if builder else [])], what, timeout=_quick()
    )
    first = output.splitlines()[0] if output.strip() else ""
    name = first.split(":", 1)[1].strip() if ":" in first else ""
    listing = _run(
        ["docker", "buildx", "ls", "--format", "{{json . }}"], "docker buildx ls", timeout=_quick()
    )
    for line in listing.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("Name") == name:
            return entry
    raise DockerError(f"{what}: builder {name!r} not found in `docker buildx ls`")


def pull(ref: str, *, quiet: bool = False, platform: str | None = None) -> None:
    argv = ["docker", "pull", *([f"--platform={platform}"] if platform else []), ref]
    if not quiet:
        echo(argv)
    _run([*argv[:-1], "--quiet", ref], f"docker pull {ref}")


def has_local(ref: str, digest: str | None, *, platform: str | None = None) -> bool:
    """Does the engine already hold `ref` as pulled at `digest` (the registry's answer for
    the tag just now), for `platform`? Then `docker pull` would only re-check the manifest and
    download nothing, so the hook skips it. False whenever unsure (no digest, engine API
    unreachable, another platform)."""
    if not digest:
        return False
    answer = _engine_api("GET", f"/images/{quote(ref, safe='/:@')}/json")
    if answer is None or answer[0] != 200:
        return False
    try:
        info = json.loads(answer[1])
        repo_digests = info.get("RepoDigests") or []
        local = "/".join(
            p for p in (info.get("Os"), info.get("Architecture"), info.get("Variant")) if p
        )
    except (ValueError, AttributeError):
        return False
    if platform and local != platform and not (local.startswith(platform + "/")):
        return False
    repository = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return f"{repository}@{digest}" in repo_digests


def tag(source: str, target: str) -> None:
    argv = ["docker", "tag", source, target]
    echo(argv)
    what = f"docker tag {source} {target}"
    query = unixsocket.tag_query(target)
    answer = None
    if query is not None:
        answer = _engine_api("POST", f"/images/{quote(source, safe='/:@')}/tag?{query}")
    if answer is None:
        _run(argv, what)
    elif answer[0] >= 300:
        raise _failure(
            what, 1, "", f"Error response from daemon: {unixsocket.api_message(answer[1])}", None
        )


def _engine_api(
    method: str, path: str, *, timeout: float | None = None
) -> tuple[int, bytes] | None:
    """(status, body) of one Engine API request on the CLI's unix socket; None when the CLI
    must do it instead (another kind of engine endpoint, or the socket does not answer)."""
    where = unixsocket.engine_socket()
    if where is None:
        return None
    limit = deadlines.current().cap(_quick() if timeout is None else timeout)
    if limit is not None and limit <= 0:
        return None
    conn = unixsocket.UnixConnection(where, timeout=QUICK if limit is None else limit)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    except TimeoutError:
        _went_silent()
        return None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def ping(timeout: float) -> bool:
    """Does the engine answer within `timeout` seconds? (before a fallback build: an engine
    that never answers would hang the build until its deadline)."""
    if _silent:
        return False
    answer = _engine_api("GET", "/_ping", timeout=timeout)
    if answer is not None:
        return answer[0] == 200
    if unixsocket.engine_socket() is not None:
        return False  # the CLI's own socket did not answer
    try:
        _run(["docker", "version", "--format", "{{.Server.Version}}"], "", timeout=timeout)
    except DockerError:
        return False
    return True
