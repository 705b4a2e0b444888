"""The envfiles source: the fixture repository's image matrix, and located errors."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from prebuild.errors import ConfigError
from prebuild.model import CacheSettings, ImageSpec, Origin
from prebuild.sources.envfiles.importer import EnvFilesSource

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "envfiles_repo"
BASE = "127.0.0.1:5000/base/busybox:latest"

# (image, platform, env file, line of CONTAINER_NAME) for the fixture, in sorted file order.
EXPECTED = [
    ("ci_arm_linux", "linux/arm64", "ci/test/00_setup_env_arm.sh", 9),
    ("ci_i686_multiprocess", "linux", "ci/test/00_setup_env_i686_multiprocess.sh", 9),
    ("ci_native_asan", "linux", "ci/test/00_setup_env_native_asan.sh", 8),
    ("ci_fuzz_libfuzzer", "linux", "ci/test/00_setup_env_native_fuzz.sh", 8),
    ("ci_native_nowallet", "linux", "ci/test/00_setup_env_native_nowallet.sh", 8),
    ("ci_native_previous_releases", "linux", "ci/test/00_setup_env_native_previous_releases.sh", 9),
    ("ci_native_tidy", "linux", "ci/test/00_setup_env_native_tidy.sh", 8),
    ("ci_win64", "linux", "ci/test/00_setup_env_win64.sh", 9),
]


def fixture_table() -> dict[str, Any]:
    return tomllib.loads((FIXTURE / "prebuild.toml").read_text())["source"][0]


def defaults_for(root: Path) -> ImageSpec:
    """Project-wide defaults as the config passes them: these must survive into every image."""
    return ImageSpec(
        name="",
        repo_root=root,
        context=root,
        dockerfile=root / "Dockerfile",
        build_args={"PROJECT_ARG": "p"},
        labels={"org.example.team": "ci"},
        extra_inputs=("ci/retry/**",),
        refresh_seconds=7 * 86400,
        tags=("latest", "main"),
        cache=CacheSettings(mode="min"),
    )


def images(root: Path, **changes: Any) -> list[ImageSpec]:
    table = {**fixture_table(), **changes}
    source = EnvFilesSource.model_validate(table)
    specs = source.images(
        repo_root=root, config_file=root / "prebuild.toml", defaults=defaults_for(root)
    )
    if source.failures:  # as the config loader does: every failure is a located problem
        raise source.failures[0]
    return specs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A writable copy of the fixture repository."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "repo"))


def test_fixture_yields_exactly_the_expected_images() -> None:
    specs = images(FIXTURE)
    assert [(s.name, s.platforms[0], s.origin.file if s.origin else None) for s in specs] == [
        (name, platform, file) for name, platform, file, _ in EXPECTED
    ]
    for spec, (name, _, file, line) in zip(specs, EXPECTED, strict=True):
        assert spec.origin == Origin(file=file, line=line)
        assert spec.build_args == {
            "PROJECT_ARG": "p",
            "CI_IMAGE_NAME_TAG": BASE,
            "FILE_ENV": f"./{file}",
            "BASE_ROOT_DIR": "/ci_container_base",
        }
        assert spec.repo_root == FIXTURE
        assert spec.context == FIXTURE
        assert spec.dockerfile == FIXTURE / "ci" / "test_imagefile"
        assert len(spec.platforms) == 1
        # The project defaults are carried over untouched.
        assert spec.labels == {"org.example.team": "ci"}
        assert spec.tags == ("latest", "main")
        assert spec.cache == CacheSettings(mode="min")
        assert spec.refresh_seconds == 7 * 86400
        assert spec.extra_inputs == ("ci/retry/**",)
        assert (FIXTURE / spec.build_args["FILE_ENV"]).is_file(), name


def test_host_only_job_is_not_an_image() -> None:
    host_only = FIXTURE / "ci" / "test" / "00_setup_env_mac_native.sh"
    assert "CONTAINER_NAME=ci_mac_native" in host_only.read_text()
    names = {spec.name for spec in images(FIXTURE)}
    assert "ci_mac_native" not in names
    assert len(list((FIXTURE / "ci" / "test").glob("00_setup_env_*.sh"))) == len(EXPECTED) + 1


def test_base_defaults_when_not_overridden() -> None:
    specs = images(FIXTURE, env={})
    assert {s.build_args["CI_IMAGE_NAME_TAG"] for s in specs} == {
        "docker.io/library/debian:bookworm"
    }


def test_initial_env_overrides_shared_defaults() -> None:
    specs = images(FIXTURE, env={"PREBUILD_BASE": "r/b:1", "BASE_ROOT_DIR": "/other"})
    assert {s.build_args["BASE_ROOT_DIR"] for s in specs} == {"/other"}
    assert {s.build_args["CI_IMAGE_NAME_TAG"] for s in specs} == {"r/b:1"}


def test_build_arg_forms() -> None:
    build_args = {
        "REL": {"file_path": "relative"},
        "DOT": {"file_path": "dot-relative"},
        "LIT": {"value": "literal"},
        "GOAL": {"var": "GOAL"},
        "PACKAGES": {"var": "PACKAGES"},
        "PLATFORM": {"var": "CI_IMAGE_PLATFORM"},
    }
    specs = {s.name: s for s in images(FIXTURE, build_args=build_args)}
    win64 = specs["ci_win64"].build_args
    assert win64["REL"] == "ci/test/00_setup_env_win64.sh"
    assert win64["DOT"] == "./ci/test/00_setup_env_win64.sh"
    assert win64["LIT"] == "literal"
    assert win64["GOAL"] == "deploy"
    assert win64["PLATFORM"] == "linux"  # defaulted by the shared file
    asan = specs["ci_native_asan"].build_args["PACKAGES"]
    assert asan == "clang llvm libevent-dev libboost-dev python3-zmq"  # continuation inside "..."
    multiprocess = specs["ci_i686_multiprocess"].build_args["PACKAGES"]
    assert multiprocess == "llvm clang g++-multilib $NOT_EXPANDED"
    tidy = specs["ci_native_tidy"].build_args["PACKAGES"]
    assert tidy == "clang-18 clang-tidy-18 libclang-18-dev"
    assert specs["ci_native_nowallet"].build_args["GOAL"] == "install"  # shared default


def test_order_decides_which_defaults_a_job_sees(tmp_path: Path) -> None:
    write(tmp_path / "ci/shared.sh", "FLAVOR=${FLAVOR:-shared}\n")
    write(tmp_path / "ci/env_a.sh", "BASE=b\nNAME=ci_${FLAVOR:-job}\n")
    write(tmp_path / "Dockerfile", "FROM scratch\n")
    table = minimal_table(shared=["ci/shared.sh"])
    assert [s.name for s in source_images(tmp_path, table)] == ["ci_job"]
    table["order"] = "shared-first"
    assert [s.name for s in source_images(tmp_path, table)] == ["ci_shared"]


def test_name_defaulted_by_the_shared_file(tmp_path: Path) -> None:
    """Bitcoin Core's shared file defaults CONTAINER_NAME: the origin has no line in the job,
    and two jobs relying on the default collide."""
    write(tmp_path / "ci/shared.sh", "NAME=${NAME:-ci_unnamed}\n")
    write(tmp_path / "ci/env_a.sh", "BASE=b\n")
    write(tmp_path / "Dockerfile", "FROM scratch\n")
    table = minimal_table(shared=["ci/shared.sh"])
    (spec,) = source_images(tmp_path, table)
    assert (spec.name, spec.origin) == ("ci_unnamed", Origin(file="ci/env_a.sh", line=None))
    write(tmp_path / "ci/env_b.sh", "BASE=b\n")
    with pytest.raises(ConfigError) as caught:
        source_images(tmp_path, table)
    assert "produced by both ci/env_a.sh and ci/env_b.sh" in caught.value.message


def test_registered_as_a_source_kind() -> None:
    import prebuild.sources as sources

    kinds = sources.source_kinds() if hasattr(sources, "source_kinds") else sources.SOURCE_KINDS
    assert kinds["envfiles"] is EnvFilesSource


def test_duplicate_image_name_names_both_files(repo: Path) -> None:
    copy = repo / "ci" / "test" / "00_setup_env_zz_copy.sh"
    copy.write_text("# same name as win64\n" + (repo / "ci/test/00_setup_env_win64.sh").read_text())
    with pytest.raises(ConfigError) as caught:
        images(repo)
    error = caught.value
    assert "ci/test/00_setup_env_win64.sh:9 and" in error.message
    assert "ci/test/00_setup_env_zz_copy.sh" in error.message
    assert "'ci_win64'" in error.message
    assert (error.file, error.line) == ("ci/test/00_setup_env_zz_copy.sh", 10)


def test_glob_matching_nothing_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        images(FIXTURE, glob="ci/test/01_nothing_*.sh")
    assert "'ci/test/01_nothing_*.sh' matched no env files" in caught.value.message
    assert caught.value.file == "prebuild.toml"


def test_shared_file_is_never_a_job() -> None:
    names = [s.name for s in images(FIXTURE, glob="ci/test/00_setup_env*.sh")]
    assert names == [name for name, *_ in EXPECTED]


@pytest.mark.parametrize(
    ("assignment", "shown"),
    [("CONTAINER_NAME=CI_Upper", "'CI_Upper'"), ("CONTAINER_NAME='a b'", "'a b'")],
)
def test_invalid_image_name_is_located_at_its_assignment(
    repo: Path, assignment: str, shown: str
) -> None:
    write(repo / "ci/test/00_setup_env_bad.sh", f"CI_IMAGE_NAME_TAG=base\n# x\n{assignment}\n")
    with pytest.raises(ConfigError) as caught:
        images(repo)
    error = caught.value
    assert f"image name {shown}" in error.message
    assert "not a valid docker repository name" in error.message
    assert (error.file, error.line) == ("ci/test/00_setup_env_bad.sh", 3)


def test_name_prefix(repo: Path) -> None:
    assert images(repo, name_prefix="btc/")[0].name == "btc/ci_arm_linux"
    with pytest.raises(ConfigError, match="not a valid docker repository name"):
        images(repo, name_prefix="Bad-")


def test_gate_without_name_is_an_error(repo: Path) -> None:
    write(repo / "ci/test/00_setup_env_noname.sh", "\nexport CI_IMAGE_NAME_TAG=base\n")
    with pytest.raises(ConfigError) as caught:
        images(repo)
    assert "sets CI_IMAGE_NAME_TAG" in caught.value.message
    assert "not CONTAINER_NAME" in caught.value.message
    assert (caught.value.file, caught.value.line) == ("ci/test/00_setup_env_noname.sh", 2)


def test_invalid_platform_is_located(repo: Path) -> None:
    write(
        repo / "ci/test/00_setup_env_plat.sh",
        "CI_IMAGE_NAME_TAG=base\nCONTAINER_NAME=ci_plat\nCI_IMAGE_PLATFORM='linux arm64'\n",
    )
    with pytest.raises(ConfigError) as caught:
        images(repo)
    assert "invalid platform 'linux arm64'" in caught.value.message
    assert (caught.value.file, caught.value.line) == ("ci/test/00_setup_env_plat.sh", 3)


def test_platform_without_variable_uses_the_default() -> None:
    specs = images(FIXTURE, platform_var=None, platform_default="linux/amd64")
    assert {s.platforms for s in specs} == {("linux/amd64",)}


def test_unset_build_arg_variable_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        images(FIXTURE, build_args={"X": {"var": "NEVER_SET"}})
    assert "build arg X: variable NEVER_SET is not set" in caught.value.message
    assert caught.value.file == "ci/test/00_setup_env_arm.sh"


def test_file_path_is_relative_to_the_context(tmp_path: Path) -> None:
    write(tmp_path / "ci/env_a.sh", "BASE=b\nNAME=ci_a\n")
    write(tmp_path / "ci/Dockerfile", "FROM scratch\n")
    table = minimal_table(context="ci", dockerfile="ci/Dockerfile")
    (spec,) = source_images(tmp_path, table)
    assert spec.context == tmp_path / "ci"
    assert spec.build_args["FILE_ENV"] == "./env_a.sh"
    write(tmp_path / "other/Dockerfile", "FROM scratch\n")
    with pytest.raises(ConfigError, match="outside the build context"):
        source_images(tmp_path, {**table, "context": "other", "dockerfile": "other/Dockerfile"})


def test_missing_dockerfile_is_an_error() -> None:
    with pytest.raises(ConfigError, match="dockerfile ci/nope not found"):
        images(FIXTURE, dockerfile="ci/nope")


def test_inputs_depends_on_and_refresh() -> None:
    spec = images(FIXTURE, inputs=["ci/retry/*"], depends_on=["ci_win64"], refresh="1d12h")[0]
    assert spec.extra_inputs == ("ci/retry/*",)
    assert spec.depends_on == ("ci_win64",)
    assert spec.refresh_seconds == 36 * 3600


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"build_args": {"A": {}}}, "set exactly one of var, file_path or value"),
        ({"build_args": {"A": {"var": "X", "value": "v"}}}, "set exactly one"),
        ({"build_args": {"A": {"file_path": "absolute"}}}, "dot-relative"),
        ({"build_args": {"A": {"var": "not-a-name"}}}, "not a shell variable name"),
        ({"gate": "1BAD"}, "not a shell variable name"),
        ({"env": {"A B": "x"}}, "not a shell variable name"),
        ({"job_var": "FILE_ENV", "shared": []}, "job_var needs the shared file"),
        ({"order": "last"}, "job-first"),
        ({"glob": "/abs/*.sh"}, "relative to the config file"),
        ({"refresh": "7days"}, "invalid duration"),
        ({"platform_default": "linux arm"}, "invalid platform"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_model_validation(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        EnvFilesSource.model_validate({**fixture_table(), **changes})


def test_fixture_images_build_the_way_the_dockerfile_runs_them(tmp_path: Path) -> None:
    """Replay ci/test_imagefile's COPY and RUN for each image with a POSIX sh: FILE_ENV and
    BASE_ROOT_DIR as given must let the install script source the job file (job first)."""
    shell = shutil.which("busybox") or shutil.which("sh")
    assert shell is not None
    command = [shell, "sh"] if shell.endswith("busybox") else [shell]
    for spec in images(FIXTURE):
        base_root = tmp_path / spec.name
        target = base_root / "ci" / "test"
        target.mkdir(parents=True)
        file_env = spec.build_args["FILE_ENV"]
        for source in ["ci/test/00_setup_env.sh", file_env, "ci/test/01_base_install.sh"]:
            shutil.copy(FIXTURE / source, target)
        for patch in (FIXTURE / "ci" / "test").glob("*.patch"):
            shutil.copy(patch, target)
        env = {"PATH": "/usr/bin:/bin", "FILE_ENV": file_env, "BASE_ROOT_DIR": str(base_root)}
        subprocess.run(
            [*command, "-c", 'set -e; cd "${BASE_ROOT_DIR}"; sh ./ci/test/01_base_install.sh'],
            env=env,
            check=True,
            capture_output=True,
        )
        out = base_root / "ci" / "out"
        assert (out / "container_name").read_text() == f"{spec.name}\n"
        assert (out / "platform").read_text() == f"{spec.platforms[0]}\n"
        assert (out / "patches").read_text() == "fix.patch\nother.patch\n"
        assert (base_root / "ci.base-install-done").read_text() == "done"


def test_fixture_dockerfile_uses_the_build_args() -> None:
    dockerfile = (FIXTURE / "ci" / "test_imagefile").read_text()
    for line in [
        "ARG CI_IMAGE_NAME_TAG",
        "FROM ${CI_IMAGE_NAME_TAG}",
        "ARG FILE_ENV",
        "ARG BASE_ROOT_DIR",
        "COPY ./ci/test/00_setup_env.sh ./${FILE_ENV} ./ci/test/01_base_install.sh "
        "${BASE_ROOT_DIR}/ci/test/",
    ]:
        assert line in dockerfile


# -- helpers ---------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def minimal_table(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "envfiles",
        "glob": "ci/env_*.sh",
        "gate": "BASE",
        "name": "NAME",
        "dockerfile": "Dockerfile",
        "build_args": {"BASE": {"var": "BASE"}, "FILE_ENV": {"file_path": "dot-relative"}},
        **changes,
    }


def source_images(root: Path, table: dict[str, Any]) -> list[ImageSpec]:
    source = EnvFilesSource.model_validate(table)
    defaults = replace(defaults_for(root), build_args={})
    specs = source.images(repo_root=root, config_file=root / "prebuild.toml", defaults=defaults)
    if source.failures:  # as the config loader does: every failure is a located problem
        raise source.failures[0]
    return specs
