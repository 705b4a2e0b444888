"""A CI in Bitcoin Core's style, adopted with one prebuild.toml and no edits: the offline plan
lists every container image with the base and platform its files give, and says where each
value came from. Keys do not depend on the host's environment or on where the checkout is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from prebuild.cli import cli
from prebuild.config.load import load_project
from prebuild.plan.planner import make_plan
from tests.conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "bitcoin_like"
# image -> (base, platform); ci_mac_native runs on the host (no CI_IMAGE_NAME_TAG): no image.
EXPECTED = {
    "ci-arm": ("docker.io/library/debian:trixie", "linux/arm64"),
    "ci-mac-cross": ("docker.io/library/debian:trixie", "linux/amd64"),
    "ci-native-asan": ("docker.io/library/ubuntu:24.04", "linux/amd64"),
    "ci_native_msan": ("docker.io/library/ubuntu:26.04", "linux/amd64"),
    "ci-native-tidy": ("docker.io/library/ubuntu:24.04", "linux/amd64"),
    "ci-s390x": ("docker.io/library/debian:trixie", "linux/s390x"),
    "ci_win64": ("docker.io/library/debian:trixie", "linux/amd64"),
}


def plan_json(cwd: Path) -> dict:
    config = str(cwd / "prebuild.toml")
    result = CliRunner().invoke(cli, ["plan", "--offline", "--json", "--config", config])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def offline_keys(repo: Path) -> dict[str, str]:
    plan = make_plan(load_project(cwd=repo), offline=True, native_platform=lambda: "linux/amd64")
    return {p.name: p.key or "" for p in plan.images}


def test_every_container_image_with_its_base_and_platform() -> None:
    plan = make_plan(load_project(cwd=FIXTURE), offline=True, native_platform=lambda: "linux/amd64")
    found = {p.name: (p.as_json()["bases"], p.platforms) for p in plan.images}
    assert found == {name: ([base], (platform,)) for name, (base, platform) in EXPECTED.items()}
    asan = next(p for p in plan.images if p.name == "ci-native-asan")
    assert asan.spec.build_args == {
        "CI_IMAGE_NAME_TAG": "docker.io/library/ubuntu:24.04",
        "FILE_ENV": "./ci/test/00_setup_env_native_asan.sh",
        "BASE_ROOT_DIR": "/ci_base",
    }


def test_plan_json_and_explain_say_where_each_value_came_from() -> None:
    images = {i["name"]: i for i in plan_json(FIXTURE)["images"]}
    arm = images["ci-arm"]
    assert arm["build_args"]["CI_IMAGE_NAME_TAG"] == {
        "value": "docker.io/library/debian:trixie",
        "from": "ci/test/00_setup_env_arm.sh:9",
    }
    assert arm["build_args"]["BASE_ROOT_DIR"]["from"] == "ci/test/00_setup_env.sh:14"
    assert arm["build_args"]["FILE_ENV"]["from"].startswith("job_var")
    assert arm["platform_from"] == "ci/test/00_setup_env_arm.sh:10"
    assert images["ci-native-tidy"]["platform_from"] == "ci/test/00_setup_env.sh:34"
    config = str(FIXTURE / "prebuild.toml")
    out = CliRunner().invoke(cli, ["explain", "ci-s390x", "--offline", "--config", config])
    assert out.exit_code == 0, out.output
    assert "from       platform=linux/s390x  <- ci/test/00_setup_env_s390x.sh:8" in out.output


def test_keys_ignore_the_host_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = offline_keys(FIXTURE)
    for name, value in {
        "CI_IMAGE_PLATFORM": "linux/arm64",
        "CI_IMAGE_NAME_TAG": "evil/base:1",
        "FILE_ENV": "./ci/test/00_setup_env_arm.sh",
        "BASE_ROOT_DIR": "/elsewhere",
        "WITH_TRACING": "true",
        "CONTAINER_NAME": "other",
    }.items():
        monkeypatch.setenv(name, value)
    assert offline_keys(FIXTURE) == before
    assert set(before) == set(EXPECTED)


def test_keys_are_identical_from_two_checkouts(tmp_path: Path) -> None:
    first = shutil.copytree(FIXTURE, tmp_path / "one" / "repo")
    second = shutil.copytree(FIXTURE, tmp_path / "somewhere" / "else" / "checkout")
    assert offline_keys(first) == offline_keys(second) == offline_keys(FIXTURE)


def test_the_env_table_is_what_the_ci_passes_in(tmp_path: Path) -> None:
    """With tracing on, the asan job's PACKAGES depend on `$(uname ...)`: unknown, but no
    image needs it, so every image still imports with the same key."""
    repo = Path(shutil.copytree(FIXTURE, tmp_path / "repo"))
    config = repo / "prebuild.toml"
    config.write_text(config.read_text() + '\n[source.env]\nWITH_TRACING = "true"\n')
    assert offline_keys(repo) == offline_keys(FIXTURE)


def test_host_only_jobs_are_not_images() -> None:
    names = {p.name for p in load_project(cwd=FIXTURE).images}
    assert "ci_mac_native" not in names
    assert (FIXTURE / "ci/test/00_setup_env_mac_native.sh").is_file()
