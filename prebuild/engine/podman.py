"""Every podman call in one place: the runner side on hosts whose CI jobs run podman.

Self-hosted runners are often one user account each, with podman's own image store (rootful
or rootless). Podman pulls from, and builds with, what its containers configuration says:
credentials from REGISTRY_AUTH_FILE / containers auth.json, then the docker config; storage
from containers-storage.conf. prebuild adds only `--tls-verify=false`, and only for a registry
that is on loopback or listed in `insecure_registries` (plain HTTP nowhere else).

A fallback build is `podman build` (buildah): it reads the build contexts pinned by key, but
not BuildKit's registry cache, whose format buildah does not understand. It says so, and
builds without it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prebuild.engine import process
from prebuild.engine.buildx import BuildRequest, echo
from prebuild.errors import DockerError

NO_BUILDKIT_CACHE = (
    "the BuildKit registry cache cannot be read by buildah (podman build): built without it"
)
_STAGE = r"^(?:\[\d+/\d+\] )?"  # multi-stage builds prefix each line with [stage/stages]
_STEP = re.compile(_STAGE + r"STEP (\d+)/(\d+): (\S+)")
_CACHED = re.compile(_STAGE + r"--> Using cache ")
_LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$")
_COUNTED = {"RUN", "COPY", "ADD", "WORKDIR"}  # as BuildKit's progress counts build steps


def tls_verify(ref: str, insecure: Iterable[str]) -> bool:
    """False only for a registry on loopback or listed as insecure: plain HTTP is allowed there."""
    host = ref.split("/", 1)[0] if "/" in ref else ""
    listed = {h.split("://", 1)[-1].rstrip("/") for h in insecure}
    return not (_LOOPBACK.match(host) or host in listed)


def _tls(verify: bool) -> list[str]:
    return [] if verify else ["--tls-verify=false"]


def _run(argv: Sequence[str], what: str, *, on_line: Callable[[str], None] | None = None) -> str:
    """Run one podman command; its output, or a DockerError with the tail of its output."""
    if shutil.which(argv[0]) is None:
        raise DockerError("podman was not found on PATH", hint="install podman")
    # its own process group, killed at the command's deadline or on Ctrl-C (engine/process)
    code, lines = process.stream(argv, on_line or (lambda _: None))
    if code != 0:
        tail = "\n".join(lines[-12:])
        raise DockerError(f"{what} failed (exit {code}):\n{tail}")
    return "\n".join(lines)


def pull(ref: str, *, platform: str | None, verify: bool) -> None:
    argv = ["podman", "pull", "--quiet", *_tls(verify)]
    argv += [f"--platform={platform}"] if platform else []
    echo([*argv, ref])
    _run([*argv, ref], f"podman pull {ref}")


def tag(source: str, target: str) -> None:
    argv = ["podman", "tag", source, target]
    echo(argv)
    _run(argv, f"podman tag {source} {target}")


def native_platform() -> str:
    found = _run(["podman", "info", "--format", "{{.Host.OS}}/{{.Host.Arch}}"], "podman info")
    return found.strip().splitlines()[-1] if found.strip() else "linux/amd64"


def ping() -> bool:
    """Podman has no daemon: it answers when its storage can be opened."""
    try:
        _run(["podman", "info", "--format", "{{.Store.GraphRoot}}"], "podman info")
    except DockerError:
        return False
    return True


def build_argv(request: BuildRequest, *, verify: bool) -> list[str]:
    """`podman build` for what a read-only fallback asks: no cache export, no push; BuildKit
    cache entries are left out (buildah cannot read them)."""
    args = ["podman", "build", *_tls(verify), *request.shared_args()]
    for tag_name in request.tags:
        args += ["--tag", tag_name]
    if request.no_cache:
        args.append("--no-cache")
    return [*args, str(request.context)]


@dataclass(frozen=True)
class Steps:
    cached: int
    total: int


def count_steps(lines: Iterable[str]) -> Steps:
    """Build steps (RUN/COPY/ADD/WORKDIR) and how many buildah took from its layer cache."""
    cached = total = 0
    counting = False
    for line in lines:
        step = _STEP.match(line)
        if step:
            counting = step.group(3).upper() in _COUNTED
            total += counting
        elif counting and _CACHED.match(line):
            cached += 1
            counting = False
    return Steps(cached, total)


def build(request: BuildRequest, *, verify: bool, on_line: Callable[[str], None]) -> Steps:
    argv = build_argv(request, verify=verify)
    echo(argv)
    output = _run(argv, "podman build", on_line=on_line)
    return count_steps(output.splitlines())
