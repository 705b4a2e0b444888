"""Keys of images imported from env files react to exactly the right edits (offline plan)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prebuild.config.load import load_project
from prebuild.plan.planner import make_plan
from tests.conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "envfiles_repo"
IMAGES = {
    "ci_arm_linux": "linux/arm64",
    "ci_i686_multiprocess": "linux/amd64",
    "ci_native_asan": "linux/amd64",
    "ci_fuzz_libfuzzer": "linux/amd64",
    "ci_native_nowallet": "linux/amd64",
    "ci_native_previous_releases": "linux/amd64",
    "ci_native_tidy": "linux/amd64",
    "ci_win64": "linux/amd64",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "repo")
    return tmp_path / "repo"


def keys(repo: Path) -> dict[str, str]:
    plan = make_plan(load_project(cwd=repo), offline=True, native_platform=lambda: "linux/amd64")
    return {p.name: p.key for p in plan.images if p.key}


def test_plan_lists_exactly_the_images_with_bases_and_platforms(repo: Path) -> None:
    plan = make_plan(load_project(cwd=repo), offline=True, native_platform=lambda: "linux/amd64")
    found = {p.name: p.as_json() for p in plan.images}
    assert {n: i["platforms"] for n, i in found.items()} == {n: [p] for n, p in IMAGES.items()}
    assert all(i["bases"] == ["127.0.0.1:5000/base/busybox:latest"] for i in found.values())
    tidy = found["ci_native_tidy"]
    assert "ci/test/00_setup_env_native_tidy.sh" in tidy["inputs"]
    assert "ci/test/00_setup_env_native_asan.sh" not in tidy["inputs"]


def edit(repo: Path, relative: str, extra: str) -> None:
    path = repo / relative
    path.write_text(path.read_text() + extra)


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_editing_one_env_file_changes_only_its_image(repo: Path) -> None:
    before = keys(repo)
    edit(repo, "ci/test/00_setup_env_native_fuzz.sh", "export EXTRA=1\n")
    assert changed(before, keys(repo)) == {"ci_fuzz_libfuzzer"}


@pytest.mark.parametrize("shared", ["ci/test/01_base_install.sh", "ci/test/fix.patch"])
def test_editing_shared_install_script_or_a_patch_changes_all(repo: Path, shared: str) -> None:
    before = keys(repo)
    edit(repo, shared, "\n# edited\n")
    assert changed(before, keys(repo)) == set(IMAGES)


def test_editing_a_file_outside_every_copy_changes_none(repo: Path) -> None:
    before = keys(repo)
    edit(repo, "README.md", "edited\n")
    (repo / "ci" / "test" / "notes.txt").write_text("not copied\n")
    assert changed(before, keys(repo)) == set()


def test_changing_the_default_base_root_changes_all(repo: Path) -> None:
    before = keys(repo)
    shared = repo / "ci" / "test" / "00_setup_env.sh"
    shared.write_text(shared.read_text().replace("/ci_container_base", "/ci_base2"))
    assert changed(before, keys(repo)) == set(IMAGES)


def test_unterminated_quote_is_a_located_error(repo: Path) -> None:
    from prebuild.errors import ConfigError

    (repo / "ci" / "test" / "00_setup_env_broken.sh").write_text(
        'export CONTAINER_NAME=broken\nexport CI_IMAGE_NAME_TAG="oops\n'
    )
    with pytest.raises(ConfigError) as error:
        load_project(cwd=repo)
    assert "ci/test/00_setup_env_broken.sh:2" in str(error.value)
    assert error.value.exit_code == 2
