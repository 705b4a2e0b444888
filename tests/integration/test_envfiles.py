"""Images imported from a Bitcoin Core style env-file matrix: built, pushed, pulled by name."""

from __future__ import annotations

import shlex
import shutil
import subprocess

from prebuild.engine.progress import parse
from tests.conftest import REPO_ROOT
from tests.integration.conftest import Stack, wipe_engine
from tests.integration.example_repo import PREBUILD, Repo

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "envfiles_repo"
TWO = ("ci_native_tidy", "ci_fuzz_libfuzzer")


def make_repo(tmp_path, stack: Stack, unique: str) -> Repo:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    config = root / "prebuild.toml"
    config.write_text(
        config.read_text().replace("127.0.0.1:5000/base/busybox:latest", stack.base_image)
    )
    return Repo(root=root, stack=stack, registry=f"{stack.registry}/{unique}")


def test_imported_images_build_push_and_pull_under_their_container_name(
    stack: Stack, tmp_path, unique
) -> None:
    repo = make_repo(tmp_path, stack, unique)
    _, report = repo.build(*TWO)
    assert {i["name"]: i["status"] for i in report["images"]} == dict.fromkeys(TWO, "built")

    wipe_engine(stack.docker)
    for name in TWO:
        out = repo.run("pull", name, "--format", "shell").stdout
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in out.splitlines()
            if line.startswith("export ")
        )
        assert shlex.split(exports["PREBUILD_OUTCOME"]) == ["pulled"]
        assert stack.docker.image.exists(name)
        cache_arg = shlex.split(shlex.split(exports["DOCKER_BUILD_CACHE_ARG"])[0])
        assert f"--cache-from=type=registry,ref={repo.registry}/{name}:buildcache" in cache_arg

    # The job's own build line, unchanged, now finishes from cache: every step CACHED.
    script = (
        f'eval "$({shlex.join(PREBUILD)} pull ci_native_tidy --format shell)" && '
        "docker buildx build --progress=plain --file ci/test_imagefile "
        "--build-arg CI_IMAGE_NAME_TAG=$CI_BASE "
        "--build-arg FILE_ENV=./ci/test/00_setup_env_native_tidy.sh "
        "--build-arg BASE_ROOT_DIR=/ci_container_base "
        "--tag=ci_native_tidy $DOCKER_BUILD_CACHE_ARG --load ."
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=repo.root,
        env=stack.run_env(PREBUILD_REGISTRY=repo.registry, CI_BASE=stack.base_image),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    progress = parse(proc.stderr.splitlines())
    assert progress.total == 3 and progress.cached == 3


def test_explain_shows_the_env_file_and_shared_inputs(stack: Stack, tmp_path, unique) -> None:
    repo = make_repo(tmp_path, stack, unique)
    out = repo.run("explain", "ci_fuzz_libfuzzer").stdout
    for expected in (
        "build-arg  FILE_ENV=./ci/test/00_setup_env_native_fuzz.sh",
        "build-arg  BASE_ROOT_DIR=/ci_container_base",
        "ci/test/00_setup_env_native_fuzz.sh",
        "ci/test/01_base_install.sh",
        "ci/test/fix.patch",
    ):
        assert expected in out
    assert "00_setup_env_native_tidy.sh" not in out
