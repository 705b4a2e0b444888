"""What `prebuild pull --format ...` hands the CI: text, shell exports, GitHub files, JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from prebuild.errors import UsageError
from prebuild.pull import output
from prebuild.pull.hook import PullResult

CACHE = ["--cache-from=type=registry,ref=reg:5000/ci/base:buildcache"]


def pulled(name: str = "base") -> PullResult:
    return PullResult(
        name=name,
        local_name=f"local-{name}",
        key="0123456789abcdef01234567",
        ref=f"reg:5000/ci/{name}:0123456789abcdef01234567",
        outcome="pulled",
        seconds=0.234,
        cache_args=list(CACHE),
    )


def cache_only() -> PullResult:
    return PullResult(
        name="tools/lint",
        local_name="lint",
        key=None,
        ref=None,
        outcome="cache-args",
        seconds=1.06,
        reason="registry unreachable",
        cache_args=[*CACHE, "--cache-from=type=registry,ref=reg:5000/ci/base:latest"],
    )


def test_one_image_also_gets_the_unsuffixed_names_and_the_cache_arg() -> None:
    assert output.variables([pulled()]) == {
        "PREBUILD_BASE_IMAGE": "local-base",
        "PREBUILD_BASE_REF": "reg:5000/ci/base:0123456789abcdef01234567",
        "PREBUILD_BASE_KEY": "0123456789abcdef01234567",
        "PREBUILD_BASE_OUTCOME": "pulled",
        "PREBUILD_IMAGE": "local-base",
        "PREBUILD_REF": "reg:5000/ci/base:0123456789abcdef01234567",
        "PREBUILD_KEY": "0123456789abcdef01234567",
        "PREBUILD_OUTCOME": "pulled",
        "DOCKER_BUILD_CACHE_ARG": CACHE[0],
    }


def test_several_images_get_only_suffixed_names_and_empty_values_when_unknown() -> None:
    values = output.variables([pulled(), cache_only()])
    assert "PREBUILD_IMAGE" not in values and "DOCKER_BUILD_CACHE_ARG" not in values
    # "tools/lint" -> TOOLS_LINT: any character a shell name cannot hold becomes "_"
    assert values["PREBUILD_TOOLS_LINT_IMAGE"] == "lint"
    assert values["PREBUILD_TOOLS_LINT_REF"] == values["PREBUILD_TOOLS_LINT_KEY"] == ""
    assert values["PREBUILD_TOOLS_LINT_OUTCOME"] == "cache-args"


def test_text_says_outcome_local_name_time_ref_and_why() -> None:
    assert output.text([pulled(), cache_only()]) == [
        "base: pulled as local-base in 0.2s (reg:5000/ci/base:0123456789abcdef01234567)",
        "tools/lint: cache-args as lint in 1.1s — registry unreachable",
        "  " + " ".join(cache_only().cache_args),
    ]


def test_shell_exports_survive_eval_in_bash() -> None:
    tricky = pulled()
    tricky.reason = "ignored"
    tricky.local_name = "it's $HOME; `true`"
    lines = output.shell([tricky])
    assert all(line.startswith("export ") for line in lines)
    script = "\n".join([*lines, 'printf "%s\\n" "$PREBUILD_IMAGE" "$DOCKER_BUILD_CACHE_ARG"'])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["it's $HOME; `true`", CACHE[0]]


def test_json_is_one_object_per_image() -> None:
    lines = output.json_lines([pulled(), cache_only()])
    docs = [json.loads(line) for line in lines]
    assert [d["name"] for d in docs] == ["base", "tools/lint"]
    assert docs[0] == pulled().as_json()
    assert docs[1]["cache_args"] == cache_only().cache_args


def test_github_appends_env_lines_and_a_summary_table(tmp_path: Path) -> None:
    env_file, summary = tmp_path / "env", tmp_path / "summary.md"
    env_file.write_text("EARLIER=1\n")
    env = {"GITHUB_ENV": str(env_file), "GITHUB_STEP_SUMMARY": str(summary)}
    lines = output.emit([pulled(), cache_only()], "github", env)
    assert lines == output.text([pulled(), cache_only()])  # the log still says what happened
    written = env_file.read_text().splitlines()
    assert written[0] == "EARLIER=1"  # appended, never truncated
    assert "PREBUILD_BASE_IMAGE=local-base" in written
    assert "PREBUILD_TOOLS_LINT_OUTCOME=cache-args" in written
    table = summary.read_text()
    assert table.startswith("| image | outcome | local name | time | ref |\n|---|")
    assert "| `base` | pulled | `local-base` | 0.2s | reg:5000/ci/base:" in table
    assert "\ntools/lint: registry unreachable\n" in table


def test_github_without_a_summary_file_writes_only_the_env(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    output.github([pulled()], {"GITHUB_ENV": str(env_file)})
    assert "PREBUILD_IMAGE=local-base" in env_file.read_text().splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env"]


def test_github_outside_actions_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="GITHUB_ENV"):
        output.emit([pulled()], "github", {})


@pytest.mark.parametrize("fmt", ["text", "shell", "json"])
def test_emit_picks_the_format(fmt: str) -> None:
    expected = {"text": output.text, "shell": output.shell, "json": output.json_lines}[fmt]
    assert output.emit([pulled()], fmt, {}) == expected([pulled()])


def test_a_value_with_a_newline_cannot_forge_more_github_env_lines(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    forged = pulled()
    forged.local_name = "x\nEVIL=1\r"
    output.github([forged], {"GITHUB_ENV": str(env_file)})
    lines = env_file.read_text().splitlines()
    assert not any(line.startswith("EVIL=") for line in lines)
    assert "PREBUILD_IMAGE=x EVIL=1 " in lines


def test_check_refuses_github_files_that_cannot_be_written_before_any_pull(tmp_path: Path):
    output.check("text", {})  # only github writes files
    output.check("github", {"GITHUB_ENV": str(tmp_path / "env")})
    with pytest.raises(UsageError, match="GITHUB_ENV"):
        output.check("github", {})
    with pytest.raises(UsageError, match="GITHUB_STEP_SUMMARY.*is a directory"):
        output.check("github", {"GITHUB_ENV": str(tmp_path / "env"), "GITHUB_STEP_SUMMARY": "."})
