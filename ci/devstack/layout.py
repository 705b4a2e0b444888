"""Where the stack keeps its files, and which ports it listens on.

Everything lives under the repo's git-ignored `ci/.stack/state` and `.cache`, except the
engine's exec-root and socket: unix socket paths are limited to 108 bytes, so those go under
a short per-checkout directory in /run.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

CI_DIR = Path(__file__).resolve().parent.parent  # ci/
REPO_ROOT = CI_DIR.parent
HERE = CI_DIR / ".stack"  # git-ignored: downloads, unpacked engine, data dirs, logs

ACCESS_KEY = "prebuild-local"  # moto accepts any credentials; these are not secrets
SECRET_KEY = "prebuild-local-secret"
REGION = "us-east-1"
S3_REGISTRY_BUCKET = "prebuild-registry"
DEMO_CACHE_BUCKET = "prebuild-demo-cache"  # the example set's S3 cache (root prebuild.toml)
BASE_IMAGE_REPO = "seed/busybox"
BASE_IMAGE_TAG = "stable"
# Accounts of the authenticated registries (test-only values, printed by `ci/stack env`).
PUSH_USER, PUSH_PASSWORD = "prebuild-push", "push-pw-8e3c1f0a-test-only"
PULL_USER, PULL_PASSWORD = "prebuild-pull", "pull-pw-5b7d2e94-test-only"
ROOTLESS_USER = "prebuild-rootless"  # a runner account with rootless podman
TOKEN_SERVICE = "prebuild-stack-registry"  # the `service` / JWT audience
TOKEN_ISSUER = "prebuild-stack-tokens"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class EnginePaths:
    """One private dockerd's files. Engine N > 1 (standing in for another build machine) runs
    under its own /run directory, so recovering one engine never touches another's processes."""

    number: int
    run: Path
    data_root: Path
    exec_root: Path
    socket: Path
    pidfile: Path
    log: Path
    daemon_json: Path


@dataclass(frozen=True)
class Layout:
    state: Path
    cache: Path
    run: Path
    registry_port: int
    s3_port: int
    s3_registry_port: int
    auth_registry_port: int = 35003
    token_port: int = 35004
    basic_registry_port: int = 35005
    proxy_port: int = 35006  # a bench/test proxy the engine may pull through (plain HTTP)

    @property
    def prefix(self) -> Path:
        """Debian 13 engine packages unpacked here (downloaded .debs cached beside it)."""
        return self.cache / "prefix"

    @property
    def debs(self) -> Path:
        return self.cache / "debs"

    @property
    def tools_venv(self) -> Path:
        return self.cache / "tools-venv"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def docker_config(self) -> Path:
        return self.state / "docker-config"

    @property
    def data_root(self) -> Path:
        return self.state / "docker"

    @property
    def exec_root(self) -> Path:
        return self.run / "exec"

    @property
    def docker_socket(self) -> Path:
        return self.run / "docker.sock"

    def engine(self, number: int = 1) -> EnginePaths:
        if number == 1:
            return EnginePaths(
                1,
                self.run,
                self.data_root,
                self.exec_root,
                self.docker_socket,
                self.pids / "dockerd.pid",
                self.logs / "dockerd.log",
                self.state / "daemon.json",
            )
        run = Path(f"{self.run}-{number}")
        return EnginePaths(
            number,
            run,
            self.state / f"docker-{number}",
            run / "exec",
            run / "docker.sock",
            self.pids / f"dockerd-{number}.pid",
            self.logs / f"dockerd-{number}.log",
            self.state / f"daemon-{number}.json",
        )

    @property
    def registry_addr(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def s3_registry_addr(self) -> str:
        return f"127.0.0.1:{self.s3_registry_port}"

    @property
    def proxy_addr(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def auth_registry_addr(self) -> str:
        """distribution with `auth: token`, tokens from the stack's token service."""
        return f"127.0.0.1:{self.auth_registry_port}"

    @property
    def basic_registry_addr(self) -> str:
        """distribution with `auth: htpasswd` (Basic auth)."""
        return f"127.0.0.1:{self.basic_registry_port}"

    @property
    def token_addr(self) -> str:
        return f"127.0.0.1:{self.token_port}"

    @property
    def auth_dir(self) -> Path:
        """Token signing key and certificate, account hashes, htpasswd."""
        return self.state / "auth"

    @property
    def ports(self) -> tuple[int, ...]:
        """Every fixed port the stack listens on."""
        return (
            self.registry_port, self.s3_port, self.s3_registry_port, self.auth_registry_port,
            self.token_port, self.basic_registry_port, self.proxy_port,
        )  # fmt: skip

    @property
    def base_image(self) -> str:
        return f"{self.registry_addr}/{BASE_IMAGE_REPO}:{BASE_IMAGE_TAG}"


def layout() -> Layout:
    state = Path(os.environ.get("PREBUILD_STACK_STATE", HERE / "state")).resolve()
    cache = Path(os.environ.get("PREBUILD_STACK_CACHE", HERE / "cache")).resolve()
    tag = hashlib.sha256(str(state).encode()).hexdigest()[:10]
    registry = _port("PREBUILD_STACK_REGISTRY_PORT", 35000)
    return Layout(
        state=state,
        cache=cache,
        run=Path("/run") / f"prebuild-{tag}",
        registry_port=registry,
        s3_port=_port("PREBUILD_STACK_S3_PORT", 35001),
        s3_registry_port=_port("PREBUILD_STACK_S3_REGISTRY_PORT", 35002),
        # later services default to the registry's port + 3..5: a checkout that moved its
        # registry port (several stacks on one machine) moves these with it
        auth_registry_port=_port("PREBUILD_STACK_AUTH_REGISTRY_PORT", registry + 3),
        token_port=_port("PREBUILD_STACK_TOKEN_PORT", registry + 4),
        basic_registry_port=_port("PREBUILD_STACK_BASIC_REGISTRY_PORT", registry + 5),
        proxy_port=_port("PREBUILD_STACK_PROXY_PORT", registry + 6),
    )
