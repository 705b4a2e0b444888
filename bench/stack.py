"""The local stack as the benchmarks see it: its environment, the engine, the registry.

`bench/run` evals `ci/stack env` before starting Python, so everything here reads
plain environment variables; whatever `PREBUILD_STACK_*` variables select (another state dir,
other ports) is honoured because the stack itself resolves them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.harness import REPO_ROOT, CommandFailed, log, run

STACK = REPO_ROOT / "ci" / "stack"
PREBUILD = str(REPO_ROOT / ".venv" / "bin" / "prebuild")


@dataclass(frozen=True)
class Stack:
    registry: str  # host:port of the filesystem registry
    s3_endpoint: str
    base_image: str  # the seeded busybox, REGISTRY/seed/busybox:stable
    state: Path  # the stack's state dir (registry storage lives below it)
    proxy_addr: str = ""  # 127.0.0.1:PORT the engine treats as a plain-HTTP registry (P2)

    @classmethod
    def from_env(cls) -> Stack:
        missing = [
            name
            for name in ("DOCKER_HOST", "PREBUILD_TEST_REGISTRY", "PREBUILD_STACK_DATA")
            if not os.environ.get(name)
        ]
        if missing:
            raise SystemExit(
                f"bench: {', '.join(missing)} not set: run bench/run, which evals `ci/stack env`"
            )
        return cls(
            registry=os.environ["PREBUILD_TEST_REGISTRY"],
            s3_endpoint=os.environ["PREBUILD_TEST_S3_ENDPOINT"],
            base_image=os.environ["PREBUILD_TEST_BASE_IMAGE"],
            state=Path(os.environ["PREBUILD_STACK_DATA"]),
            proxy_addr=os.environ.get("PREBUILD_TEST_PROXY_ADDR", ""),
        )

    @property
    def registry_root(self) -> Path:
        """distribution's filesystem storage root (`rootdirectory` in the stack's config)."""
        return self.state / "registry" / "docker" / "registry" / "v2"


def env(**extra: str) -> dict[str, str]:
    """The process environment (stack variables included) plus `extra`."""
    merged = dict(os.environ)
    merged.update(extra)
    return merged


def prebuild_argv(*args: str) -> list[str]:
    """The installed console script, exactly what a CI job runs."""
    return [PREBUILD, *args]


# -- engine -----------------------------------------------------------------------------------


def wipe_engine() -> None:
    """What an ephemeral runner starts with: no containers, no images, no build cache."""
    containers = run(["docker", "ps", "-aq"]).stdout.split()
    if containers:
        run(["docker", "rm", "-f", *containers])
    images = sorted(set(run(["docker", "image", "ls", "-aq"]).stdout.split()))
    if images:
        run(["docker", "image", "rm", "-f", *images], check=False)
    run(["docker", "buildx", "prune", "-af"])
    left = run(["docker", "image", "ls", "-aq"]).stdout.split()
    if left:
        raise CommandFailed(f"engine wipe left {len(left)} image(s): {' '.join(left[:5])}")
    os.sync()  # the deletes' metadata writes land now, not during the next measurement


def engine_versions() -> dict[str, str]:
    fmt = "{{.Server.Version}}|{{range .Server.Components}}{{.Name}}={{.Version}};{{end}}"
    server = run(["docker", "version", "--format", fmt], check=False).stdout.strip()
    buildx = run(["docker", "buildx", "version"], check=False).stdout.strip()
    inspect = run(["docker", "buildx", "inspect"], check=False).stdout
    buildkit = next(
        (line.split(":", 1)[1].strip() for line in inspect.splitlines() if "BuildKit" in line),
        "",
    )
    driver = next(
        (line.split(":", 1)[1].strip() for line in inspect.splitlines() if "Driver:" in line),
        "",
    )
    version, _, components = server.partition("|")
    return {
        "docker_engine": version,
        "engine_components": components.rstrip(";"),
        "buildx": buildx,
        "builder_driver": driver,
        "buildkit": buildkit + (" (embedded in dockerd)" if driver == "docker" else ""),
    }


# -- registry garbage collection --------------------------------------------------------------


def registry_gc() -> str:
    """distribution's garbage collection on the stack's filesystem registry.

    Uses `ci/stack registry-gc` when the stack has it; otherwise does the same with
    the stack's own modules and layout: stop the registry by its pidfile, run
    `docker-registry garbage-collect --delete-untagged` on its config, start it again.
    """
    proc = run([str(STACK), "registry-gc"], check=False)
    if proc.returncode == 0:
        return (proc.stderr.strip().splitlines() or [""])[-1]
    if "usage" not in (proc.stderr + proc.stdout).lower():
        raise CommandFailed(f"ci/stack registry-gc failed:\n{proc.stderr[-1500:]}")
    return _registry_gc_fallback()


def _registry_gc_fallback() -> str:
    sys.path.insert(0, str(STACK.parent))
    from devstack import procs, services  # type: ignore[import-not-found]
    from devstack.layout import layout  # type: ignore[import-not-found]

    lay = layout()
    config = services.fs_registry_config(lay)
    procs.stop(lay.pids / "registry.pid")
    try:
        done = subprocess.run(
            ["/usr/bin/docker-registry", "garbage-collect", "--delete-untagged", str(config)],
            capture_output=True,
            text=True,
            env=services._clean_env(),
        )
    finally:
        services.start_registry(lay)
    if done.returncode != 0:
        raise CommandFailed(f"registry garbage-collect failed:\n{done.stderr[-1500:]}")
    return "garbage-collect (bench fallback) done"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    mem = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
         if line.startswith("MemTotal:")),
        "0",
    )  # fmt: skip
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "?",
    )  # fmt: skip
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory_gib": f"{int(mem) / 1024 / 1024:.1f}",
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "prebuild_revision": run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], check=False
        ).stdout.strip(),
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    try:
        info.update(engine_versions())
    except (OSError, CommandFailed) as error:
        log(f"could not read engine versions: {error}")
    return info
