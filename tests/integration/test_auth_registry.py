"""Registries that require credentials, on the real stack: token auth (JWTs scoped per account)
and htpasswd Basic auth.

Credentials reach prebuild only through a docker config written by `docker login
--password-stdin`, as on a real runner. Every prebuild run here goes through a PATH shim that
records the argv of each docker, podman and git process it starts; after each test, that record and
everything the runs printed or wrote (reports, summaries, --format outputs) are scanned for
passwords, their Basic-auth encoding, bearer tokens and Authorization headers.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Stack, wipe_engine, write

NAME = "ci"
DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY tools.txt /opt/tools.txt
RUN cat /opt/tools.txt > /opt/ran
"""
SHIM = """\
#!/bin/sh
printf '%s\\n' "$*" >> "$PREBUILD_ARGV_LOG"
exec {real} "$@"
"""
_JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}")


@dataclass
class Runner:
    """Runs the prebuild CLI in a repo with one docker config, keeping all it wrote."""

    stack: Stack
    repo: Path
    shims: Path
    argv_log: Path
    written: list[str] = field(default_factory=list)

    def prebuild(self, config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        path = f"{self.shims}:{self.stack.env['PATH']}"
        proc = subprocess.run(
            [sys.executable, "-m", "prebuild", *args],
            cwd=self.repo,
            env=self.stack.run_env(
                DOCKER_CONFIG=str(config), PATH=path, PREBUILD_ARGV_LOG=str(self.argv_log), **env
            ),
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.written += [proc.stdout, proc.stderr]
        return proc

    def build(self, config: Path, *args: str, **env: str) -> tuple[int, dict]:
        report, summary = self.repo / "report.json", self.repo / "summary.md"
        report.unlink(missing_ok=True)
        proc = self.prebuild(
            config, "build", "--plain", "--report", str(report), "--summary", str(summary),
            *args, **env,
        )  # fmt: skip
        self.written += [report.read_text(), summary.read_text()]
        return proc.returncode, json.loads(report.read_text())["images"][0]

    def scan(self, secrets: list[str]) -> None:
        everything = self.written + [self.argv_log.read_text()]
        assert "$> docker" in "".join(self.written)  # the runs did call docker
        assert self.argv_log.read_text().strip()  # and the shim saw those calls
        for text in everything:
            for secret in secrets:
                assert secret not in text, "a secret leaked"
            assert not _JWT.search(text), "a token leaked"
            assert "Authorization" not in text and "Bearer " not in text


def _shims(directory: Path, stack: Stack) -> Path:
    directory.mkdir()
    for tool in ("docker", "git", "podman"):
        real = shutil.which(tool, path=stack.env["PATH"])
        assert real, f"{tool} not on the stack's PATH"
        script = directory / tool
        script.write_text(SHIM.format(real=real))
        script.chmod(0o755)
    return directory


def docker_config(stack: Stack, where: Path) -> Path:
    """An empty docker config with the stack's buildx plugin: a runner before `docker login`."""
    where.mkdir(parents=True)
    (where / "cli-plugins").symlink_to(Path(stack.env["DOCKER_CONFIG"]) / "cli-plugins")
    (where / "config.json").write_text("{}\n")
    return where


def login(stack: Stack, config: Path, registry: str, user: str, password: str) -> Path:
    subprocess.run(
        ["docker", "login", "--username", user, "--password-stdin", registry],
        input=password,
        env=stack.run_env(DOCKER_CONFIG=str(config)),
        capture_output=True,
        text=True,
        check=True,
    )
    return config


def secrets(stack: Stack) -> list[str]:
    found = []
    for who in ("PUSH", "PULL"):
        user = stack.env[f"PREBUILD_TEST_AUTH_{who}_USER"]
        password = stack.env[f"PREBUILD_TEST_AUTH_{who}_PASSWORD"]
        found += [password, base64.b64encode(f"{user}:{password}".encode()).decode()]
    return found


def project(stack: Stack, root: Path, registry: str) -> Path:
    write(root / NAME / "Dockerfile", DOCKERFILE)
    write(root / NAME / "tools.txt", "tools v1\n")
    write(
        root / "prebuild.toml",
        f'registry = "{registry}"\n[cache]\nbackend = "registry"\n'
        f'[defaults]\nbuild_args = {{ BASE_IMAGE = "{stack.base_image}" }}\n'
        f'[[image]]\nname = "{NAME}"\ncontext = "{NAME}"\n',
    )
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture
def runner(stack: Stack, tmp_path: Path, unique: str) -> Iterator[Runner]:
    registry = f"{stack.env['PREBUILD_TEST_AUTH_REGISTRY']}/{unique}"
    repo = project(stack, tmp_path / "repo", registry)
    argv_log = tmp_path / "argv.log"
    argv_log.touch()
    found = Runner(stack, repo, _shims(tmp_path / "shims", stack), argv_log)
    yield found
    found.scan(secrets(stack))


def _account(stack: Stack, tmp_path: Path, who: str, registry: str | None = None) -> Path:
    registry = registry or stack.env["PREBUILD_TEST_AUTH_REGISTRY"]
    config = docker_config(stack, tmp_path / f"config-{who.lower()}")
    user = stack.env[f"PREBUILD_TEST_AUTH_{who}_USER"]
    return login(stack, config, registry, user, stack.env[f"PREBUILD_TEST_AUTH_{who}_PASSWORD"])


def _manifest_digest(stack: Stack, ref: str) -> str | None:
    """The tag's digest, asked with a pull-only token straight from the token service."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    probe = requests.get(f"http://{host}/v2/", timeout=10)
    params = dict(re.findall(r'(\w+)="([^"]*)"', probe.headers["WWW-Authenticate"]))
    user = stack.env["PREBUILD_TEST_AUTH_PULL_USER"]
    password = stack.env["PREBUILD_TEST_AUTH_PULL_PASSWORD"]
    token = requests.get(
        params["realm"],
        params={"service": params["service"], "scope": f"repository:{repo}:pull"},
        auth=(user, password),
        timeout=10,
    ).json()["token"]
    head = requests.head(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.index.v1+json,"
            "application/vnd.oci.image.manifest.v1+json",
        },
        timeout=10,
    )
    return head.headers.get("Docker-Content-Digest") if head.status_code == 200 else None


def test_push_account_builds_pull_account_plans_pulls_and_cannot_push(
    stack: Stack, runner: Runner, tmp_path: Path
) -> None:
    push = _account(stack, tmp_path, "PUSH")
    code, built = runner.build(push)
    assert code == 0 and built["status"] == "built", built
    digest = _manifest_digest(stack, built["ref"])
    assert digest

    pull = _account(stack, tmp_path, "PULL")
    planned = json.loads(runner.prebuild(pull, "plan", "--json").stdout)["images"][0]
    assert (planned["status"], planned["ref"]) == ("present", built["ref"])

    wipe_engine(stack.docker)
    pulled = runner.prebuild(pull, "pull", NAME, "--format", "json")
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    assert json.loads(pulled.stdout.splitlines()[0])["outcome"] == "pulled"
    assert runner.prebuild(pull, "pull", NAME, "--format", "shell").returncode == 0
    assert stack.docker.image.inspect(NAME).config.labels["dev.prebuild.key"] == built["key"]

    # an untrusted run forced past prebuild's own check: the registry itself says no
    code, refused = runner.build(pull, "--force", "--allow-untrusted", PREBUILD_UNTRUSTED="1")
    assert code == 1 and refused["status"] == "failed"
    assert "insufficient_scope" in refused["reason"] or "denied" in refused["reason"]
    assert f"docker login {stack.env['PREBUILD_TEST_AUTH_REGISTRY']}" in refused["reason"]
    assert _manifest_digest(stack, built["ref"]) == digest  # the registry was not changed


def test_no_credentials_names_the_registry_and_docker_login(
    stack: Stack, runner: Runner, tmp_path: Path
) -> None:
    anonymous = docker_config(stack, tmp_path / "config-none")
    registry = stack.env["PREBUILD_TEST_AUTH_REGISTRY"]
    planned = json.loads(runner.prebuild(anonymous, "plan", "--json").stdout)["images"][0]
    assert planned["status"] == "unknown"
    assert registry in planned["reason"] and f"docker login {registry}" in planned["reason"]
    code, built = runner.build(anonymous)
    assert code == 1 and built["status"] == "failed"
    assert f"docker login {registry}" in built["reason"], built


def test_basic_auth_registry(stack: Stack, runner: Runner, tmp_path: Path, unique: str) -> None:
    registry = stack.env["PREBUILD_TEST_BASIC_REGISTRY"]
    push = _account(stack, tmp_path, "PUSH", registry)
    env = {"PREBUILD_REGISTRY": f"{registry}/{unique}"}
    code, built = runner.build(push, **env)
    assert code == 0 and built["status"] == "built", built
    planned = json.loads(runner.prebuild(push, "plan", "--json", **env).stdout)["images"][0]
    assert planned["status"] == "present"
    anonymous = docker_config(stack, tmp_path / "config-none")
    planned = json.loads(runner.prebuild(anonymous, "plan", "--json", **env).stdout)["images"][0]
    assert planned["status"] == "unknown" and f"docker login {registry}" in planned["reason"]


def test_podman_runner_pulls_with_its_own_auth_file(
    stack: Stack, runner: Runner, tmp_path: Path
) -> None:
    """A podman runner's credentials live in podman's auth file (REGISTRY_AUTH_FILE), not in
    a docker config: prebuild's registry client reads it too, podman pulls with it."""
    code, built = runner.build(_account(stack, tmp_path, "PUSH"))
    assert code == 0 and built["status"] == "built", built
    auth_file = tmp_path / "podman-auth.json"
    registry = stack.env["PREBUILD_TEST_AUTH_REGISTRY"]
    subprocess.run(
        ["podman", "login", "--tls-verify=false", "--username",
         stack.env["PREBUILD_TEST_AUTH_PULL_USER"], "--password-stdin", registry],
        input=stack.env["PREBUILD_TEST_AUTH_PULL_PASSWORD"],
        env=stack.run_env(REGISTRY_AUTH_FILE=str(auth_file)),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    anonymous = docker_config(stack, tmp_path / "config-none")  # nothing for docker
    subprocess.run(["podman", "rmi", "--all", "--force"], env=stack.run_env(), check=True)
    pulled = runner.prebuild(
        anonymous, "pull", NAME, "--engine", "podman", "--format", "json",
        REGISTRY_AUTH_FILE=str(auth_file),
    )  # fmt: skip
    result = json.loads(pulled.stdout.splitlines()[0])
    assert (result["outcome"], result["ref"]) == ("pulled", built["ref"]), pulled.stderr[-2000:]
