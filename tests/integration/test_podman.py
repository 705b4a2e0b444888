"""Podman runners on the real stack: after a nightly with docker, `prebuild pull --engine
podman` fills podman's own store (root's, and a rootless runner account's), by key.

Root's podman uses the stack's private storage.conf (CONTAINERS_STORAGE_CONF); the rootless
user (PREBUILD_TEST_ROOTLESS_USER, subordinate ids from the stack) has its store in its home
and runs prebuild from this checkout with the system's python3 (root's interpreter may be out
of its reach), in a copy of the repository it owns.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prebuild.engine import podman
from tests.conftest import REPO_ROOT
from tests.integration.conftest import Stack
from tests.integration.example_repo import Repo, make_example_repo

NAME = "app"
APP_CONF = "mode=release"  # what examples/images/app's release variant prints


@dataclass
class Runner:
    """One runner account: root, or the rootless user, each with its own podman store."""

    stack: Stack
    repo: Path
    registry: str  # the nightly's: PREBUILD_REGISTRY in the runner's environment
    user: str | None = None  # None: root

    def _argv(self, argv: Sequence[str]) -> list[str]:
        if self.user is None:
            return list(argv)
        home = pwd.getpwnam(self.user).pw_dir
        python = shutil.which("python3", path="/usr/bin:/bin")
        assert python, "the rootless user needs /usr/bin/python3 (ci/stack installs it)"
        site = next((REPO_ROOT / ".venv" / "lib").glob("python3*/site-packages"))
        env = [
            f"HOME={home}",
            "PATH=/usr/bin:/bin",
            f"PYTHONPATH={REPO_ROOT}:{site}",
            f"PREBUILD_REGISTRY={self.registry}",
            f"PREBUILD_S3_ENDPOINT_URL={self.stack.s3_endpoint}",
        ]
        argv = [python if a == sys.executable else a for a in argv]
        return ["runuser", "-u", self.user, "--", "env", "-i", *env, *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = None
        if self.user is None:
            env = self.stack.run_env(
                PREBUILD_REGISTRY=self.registry, PREBUILD_S3_ENDPOINT_URL=self.stack.s3_endpoint
            )
        proc = subprocess.run(
            self._argv(argv), cwd=self.repo, env=env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        return proc

    def pull(self, *args: str) -> tuple[dict, float]:
        started = time.monotonic()
        proc = self.run(sys.executable, "-m", "prebuild", "pull", NAME, "--engine", "podman",
                        "--format", "json", *args)  # fmt: skip
        return json.loads(proc.stdout.splitlines()[0]), time.monotonic() - started

    def wipe(self) -> None:
        self.run("podman", "rmi", "--all", "--force")
        assert not self.run("podman", "images", "--quiet").stdout.strip()


def _nightly(stack: Stack, tmp_path: Path, unique: str) -> Repo:
    repo = make_example_repo(tmp_path, stack, unique)
    _, report = repo.build()
    assert {i["status"] for i in report["images"]} == {"built"}
    return repo


def _check_runner(runner: Runner, repo: Repo) -> None:
    ref = repo.plan()[NAME]["ref"]
    runner.wipe()
    result, seconds = runner.pull()
    assert (result["outcome"], result["ref"]) == ("pulled", ref), result
    assert APP_CONF in runner.run("podman", "run", "--rm", NAME, "cat", "/etc/app.conf").stdout
    runner.wipe()  # a plain `podman pull` of the same ref, for comparison
    started = time.monotonic()
    runner.run("podman", "pull", "--quiet", "--tls-verify=false", ref)
    plain = time.monotonic() - started
    print(f"{runner.user or 'root'}: prebuild pull {seconds:.2f}s, plain podman pull {plain:.2f}s")
    assert seconds < plain + 10  # key computation and one HEAD on top of the same pull

    # a changed input: no key tag, so podman builds it locally and says what it could not use
    runner.wipe()
    (runner.repo / "examples/images/app/src/main.txt").write_text("changed on the runner\n")
    result, _ = runner.pull()
    assert result["outcome"] == "built" and result["ref"] != ref, result
    assert podman.NO_BUILDKIT_CACHE in result["reason"]
    assert APP_CONF in runner.run("podman", "run", "--rm", NAME, "cat", "/etc/app.conf").stdout
    planned = runner.run(sys.executable, "-m", "prebuild", "plan", "--json", NAME).stdout
    assert json.loads(planned)["images"][0]["status"] == "missing"  # the runner pushed nothing
    (runner.repo / "examples/images/app/src/main.txt").write_text(
        (repo.root / "examples/images/app/src/main.txt").read_text()
    )


def test_rootful_podman_pulls_by_key_and_falls_back(stack: Stack, tmp_path: Path, unique) -> None:
    repo = _nightly(stack, tmp_path, unique)
    _check_runner(Runner(stack, repo.root, repo.registry), repo)


def test_rootless_podman_pulls_by_key_and_falls_back(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    repo = _nightly(stack, tmp_path, unique)
    user = stack.env["PREBUILD_TEST_ROOTLESS_USER"]
    account = pwd.getpwnam(user)
    checkout = Path(account.pw_dir) / unique
    shutil.copytree(repo.root, checkout)
    for path in [checkout, *checkout.rglob("*")]:
        os.lchown(path, account.pw_uid, account.pw_gid)
    try:
        _check_runner(Runner(stack, checkout, repo.registry, user=user), repo)
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def test_shell_format_feeds_a_podman_jobs_own_build_line(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    repo = _nightly(stack, tmp_path, unique)
    runner = Runner(stack, repo.root, repo.registry)
    runner.wipe()
    # the job's own Dockerfile, FROM the image the hook pulled, built by the job's podman line
    job = tmp_path / "job"
    job.mkdir()
    (job / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN cat /etc/app.conf\n")
    line = (
        f'eval "$({sys.executable} -m prebuild pull {NAME} --engine podman --format shell)" && '
        'podman build --tag "$PREBUILD_IMAGE-job" $DOCKER_BUILD_CACHE_ARG '
        f'--build-arg BASE_IMAGE="$PREBUILD_IMAGE" {job}'
    )
    proc = runner.run("sh", "-c", line)
    assert APP_CONF in proc.stdout + proc.stderr
