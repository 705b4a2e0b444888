"""One job file per construct (tests/fixtures/envfiles_constructs): which jobs import, and
for the others the located error naming the image, the needed variable and its cause."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from prebuild.errors import ConfigError
from prebuild.model import ImageSpec
from prebuild.sources.envfiles.importer import EnvFilesSource
from tests.conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "envfiles_constructs"
IMPORTED = {  # name -> platform
    "ci-unused-cmdsub": "linux",
    "ci-if-else-unrelated": "linux",
    "ci-if-needed-known": "linux/arm64",
    "ci-eval-known": "linux",
}
# job -> (needed variable, line of the cause, what made it unknown)
FAILED = {
    "if_needed_unknown": ("CI_IMAGE_PLATFORM", 4, "'if' condition is unknown"),
    "unresolvable_source": ("CI_IMAGE_NAME_TAG", 4, "outside the repository"),
    "function_call": ("CONTAINER_NAME", 6, "call of function name_it"),
    "loop": ("CI_IMAGE_NAME_TAG", 3, "loop"),
    "printf_v": ("CI_IMAGE_NAME_TAG", 3, "printf -v"),
    "read": ("CONTAINER_NAME", 3, "read"),
    "eval_unknown": ("CI_IMAGE_NAME_TAG", 4, "eval of text that is not known"),
}


def source() -> tuple[list[ImageSpec], list[ConfigError]]:
    import tomllib

    table = tomllib.loads((FIXTURE / "prebuild.toml").read_text())["source"][0]
    model = EnvFilesSource.model_validate(table)
    defaults = ImageSpec(name="", repo_root=FIXTURE, context=FIXTURE, dockerfile=FIXTURE)
    specs = model.images(
        repo_root=FIXTURE, config_file=FIXTURE / "prebuild.toml", defaults=defaults
    )
    return specs, model.failures


def test_jobs_that_import() -> None:
    specs, _ = source()
    assert {s.name: s.platforms[0] for s in specs} == IMPORTED
    unused = next(s for s in specs if s.name == "ci-unused-cmdsub")
    assert unused.build_args["FILE_ENV"] == "./ci/jobs/unused_cmdsub.sh"
    assert unused.build_args["BASE_ROOT_DIR"] == "/ci"


@pytest.mark.parametrize("job", sorted(FAILED))
def test_unknown_needed_value_is_a_located_error(job: str) -> None:
    _, failures = source()
    variable, line, what = FAILED[job]
    (error,) = [e for e in failures if f"ci/jobs/{job}.sh" in e.message]
    assert (error.file, error.line) == (f"ci/jobs/{job}.sh", line)
    assert f"{variable} (" in error.message and "is unknown" in error.message
    assert what in error.message
    assert error.hint and "[source.env]" in error.hint
    assert len(failures) == len(FAILED)


def test_an_unknown_name_never_becomes_a_default() -> None:
    _, failures = source()
    assert not any("ci_unnamed" in e.message for e in failures)
    specs, _ = source()
    assert "ci-host-only" not in {s.name for s in specs}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREBUILD_")}
    return subprocess.run(
        [sys.executable, "-m", "prebuild", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_plan_lists_the_other_images_and_names_every_failed_one_with_exit_2() -> None:
    done = run(FIXTURE, "plan", "--offline")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines()[1:]}
    assert listed == set(IMPORTED)
    for job, (variable, line, _) in FAILED.items():
        assert f"error: ci/jobs/{job}.sh:{line}: " in done.stderr
        assert variable in done.stderr


def test_explain_of_an_imported_image_works_while_others_fail_and_validate_is_strict() -> None:
    explained = run(FIXTURE, "explain", "ci-if-needed-known", "--offline")
    assert explained.returncode == 0, explained.stderr
    assert "from       platform=linux/arm64  <- ci/jobs/if_needed_known.sh:6" in explained.stdout
    validated = run(FIXTURE, "validate")
    assert validated.returncode == 2 and "Traceback" not in validated.stderr
    assert "ci/jobs/read.sh:3:" in validated.stderr


def write_repo(root: Path, job_text: str, extra: dict[str, str] | None = None) -> Path:
    (root / "ci" / "jobs").mkdir(parents=True)
    for name in ("prebuild.toml", "ci/shared.sh", "ci/Dockerfile"):
        (root / name).write_text((FIXTURE / name).read_text())
    (root / "ci" / "jobs" / "job.sh").write_text(job_text)
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root


def test_deep_nesting_is_exit_2_with_a_location(tmp_path: Path) -> None:
    text = "export CI_IMAGE_NAME_TAG=" + "${A:-" * 300 + "x" + "}" * 300 + "\n"
    done = run(write_repo(tmp_path, text), "plan", "--offline")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ci/jobs/job.sh:1: nested more than" in done.stderr


def test_symlink_loop_among_sourced_files_is_exit_2_with_a_location(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, "export CI_IMAGE_NAME_TAG=b\nsource ./ci/loop_a.sh\n")
    (repo / "ci" / "loop_a.sh").symlink_to("loop_b.sh")
    (repo / "ci" / "loop_b.sh").symlink_to("loop_a.sh")
    done = run(repo, "plan", "--offline")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ci/jobs/job.sh:2: source './ci/loop_a.sh': symlink loop" in done.stderr


def test_a_job_sourcing_itself_is_exit_2_with_a_location(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, "export CI_IMAGE_NAME_TAG=b\nsource ./ci/jobs/job.sh\n")
    done = run(repo, "plan", "--offline")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ci/jobs/job.sh:2: sourced files nested more than 16 deep" in done.stderr
