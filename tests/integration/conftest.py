"""The real stack for integration tests: brought up once per run by `ci/stack up`.

If it cannot come up, every integration test errors with the stack's own message: never
skipped, never faked.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import REPO_ROOT

STACK = REPO_ROOT / "ci" / "stack"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    registry: str
    s3_registry: str
    s3_endpoint: str
    base_image: str
    docker: DockerClient

    def run_env(self, **extra: str) -> dict[str, str]:
        """os.environ plus the stack's variables: for subprocesses such as the prebuild CLI."""
        return {**os.environ, **self.env, **extra}


def stack_env() -> dict[str, str]:
    proc = subprocess.run([str(STACK), "env"], capture_output=True, text=True, check=True)
    env = {}
    for line in proc.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    proc = subprocess.run([str(STACK), "up"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"local stack failed to come up:\n{proc.stderr}", pytrace=False)
    env = stack_env()
    os.environ.update(env)  # the prebuild code under test reads DOCKER_HOST etc.
    yield Stack(
        env=env,
        registry=env["PREBUILD_TEST_REGISTRY"],
        s3_registry=env["PREBUILD_TEST_S3_REGISTRY"],
        s3_endpoint=env["PREBUILD_TEST_S3_ENDPOINT"],
        base_image=env["PREBUILD_TEST_BASE_IMAGE"],
        docker=DockerClient(host=env["DOCKER_HOST"], config=env["DOCKER_CONFIG"]),
    )


@dataclass(frozen=True)
class SecondEngine:
    """The stack's second dockerd (`ci/stack up --engines 2`), standing in for another build
    machine, and a docker config whose context `eng2` names it."""

    host: str
    docker: DockerClient
    config: Path  # DOCKER_CONFIG with the stack's buildx plugin and the context
    context: str = "eng2"


@pytest.fixture
def second_engine(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> SecondEngine:
    proc = subprocess.run([str(STACK), "up", "--engines", "2"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"second engine failed to come up:\n{proc.stderr}", pytrace=False)
    host = stack_env()["PREBUILD_TEST_DOCKER_HOST_2"]
    config = tmp_path_factory.mktemp("eng2-config")
    (config / "cli-plugins").symlink_to(Path(stack.env["DOCKER_CONFIG"]) / "cli-plugins")
    (config / "config.json").write_text("{}\n")
    subprocess.run(
        ["docker", "context", "create", "eng2", "--docker", f"host={host}"],
        env=stack.run_env(DOCKER_CONFIG=str(config)),
        capture_output=True,
        check=True,
    )
    docker = DockerClient(host=host, config=stack.env["DOCKER_CONFIG"])
    return SecondEngine(host=host, docker=docker, config=config)


def wipe_engine(docker: DockerClient) -> None:
    """What an ephemeral runner starts with: no images, no build cache."""
    for container in docker.container.list(all=True):
        container.remove(force=True)
    images = docker.image.list(all=True)
    if images:
        docker.image.remove(images, force=True, prune=True)
    docker.buildx.prune(all=True)


@pytest.fixture
def clean_engine(stack: Stack) -> DockerClient:
    wipe_engine(stack.docker)
    return stack.docker


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A repository-safe name unique to this test, so tests never share registry state."""
    import hashlib
    import time

    digest = hashlib.sha256(f"{request.node.nodeid}{time.time_ns()}".encode()).hexdigest()[:8]
    return f"t{digest}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
