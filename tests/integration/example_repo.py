"""A copy of the repository's example image set, pointed at the test stack, driven by the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.integration.conftest import Stack

PREBUILD = [sys.executable, "-m", "prebuild"]
DEMO_BASE = "127.0.0.1:35000/seed/busybox:stable"
DEMO_S3_PREFIX = 'prefix = "buildkit/"'
DEMO_BUCKET = "prebuild-demo-cache"  # created by `ci/stack up`


@dataclass
class Repo:
    root: Path
    stack: Stack
    registry: str

    def env(self, **extra: str) -> dict[str, str]:
        """The stack's environment with the example set moved onto it: this test's registry
        namespace, and the stack's S3 (whatever port it listens on) for app's S3 cache."""
        return self.stack.run_env(
            PREBUILD_REGISTRY=self.registry,
            PREBUILD_S3_ENDPOINT_URL=self.stack.s3_endpoint,
            **extra,
        )

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*PREBUILD, *args],
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"prebuild {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
            )
        return proc

    def plan(self, *args: str) -> dict[str, dict]:
        out = self.run("plan", "--json", *args).stdout
        return {image["name"]: image for image in json.loads(out)["images"]}

    def keys(self) -> dict[str, str]:
        return {name: image["key"] for name, image in self.plan().items()}

    def build(
        self, *args: str, check: bool = True, **env: str
    ) -> tuple[subprocess.CompletedProcess[str], dict]:
        report = self.root / ".prebuild-report.json"
        proc = self.run("build", "--plain", "--report", str(report), *args, check=check, **env)
        return proc, json.loads(report.read_text())

    def edit(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def set_config(self, old: str, new: str) -> None:
        config = self.root / "prebuild.toml"
        text = config.read_text()
        assert old in text, f"{old!r} not in prebuild.toml"
        config.write_text(text.replace(old, new))


def make_example_repo(
    tmp_path: Path, stack: Stack, unique: str, *, base: str | None = None
) -> Repo:
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "examples" / "images", root / "examples" / "images")
    config = (REPO_ROOT / "prebuild.toml").read_text().replace(DEMO_BASE, base or stack.base_image)
    assert DEMO_S3_PREFIX in config, "the example set's S3 cache moved: update example_repo"
    # the stack's demo bucket, under a prefix of this test's own (S3 storage and gc see only it)
    config = config.replace(DEMO_S3_PREFIX, f'prefix = "{unique}/buildkit/"')
    (root / "prebuild.toml").write_text(config)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
        check=True,
    )
    return Repo(root=root, stack=stack, registry=f"{stack.registry}/{unique}")
