"""`prebuild validate` through the real entry point: exact output and exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from prebuild.cli import cli
from prebuild.cli.commands import ALL
from prebuild.cli.validate import validate

if TYPE_CHECKING:
    from tests.unit.cli.conftest import RunMain


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo with two image directories, as the cwd."""
    for name in ("base", "tools"):
        (tmp_path / "ci" / name).mkdir(parents=True)
        (tmp_path / "ci" / name / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config(repo: Path, text: str, name: str = "prebuild.toml") -> Path:
    path = repo / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
registry = "ghcr.io/org/ci"
[[image]]
name = "base"
context = "ci/base"
platforms = ["linux/amd64", "linux/arm64"]
[[image]]
name = "tools/lint"
dockerfile = "ci/tools/Dockerfile"
depends_on = ["base"]
"""


def test_registered() -> None:
    assert validate in ALL
    params = {p.name: p for p in validate.params}
    assert params["config"].opts == ["-c", "--config"]
    assert "PREBUILD_CONFIG" in (params["config"].help or "")


def test_ok(repo: Path, run_main: RunMain) -> None:
    config(repo, GOOD)
    assert run_main(["validate"]) == (
        0,
        "ok: 2 images from prebuild.toml\n"
        "base        ci/base/Dockerfile   linux/amd64,linux/arm64\n"
        "tools/lint  ci/tools/Dockerfile  linux\n",
        "",
    )


def test_ok_with_explicit_config_elsewhere(
    repo: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    run_main: RunMain,
) -> None:
    path = config(repo, GOOD, name="ci.toml")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    code, out, err = run_main(["validate", "-c", str(path)])
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"ok: 2 images from {path}"


def test_env_config_and_registry(
    repo: Path, monkeypatch: pytest.MonkeyPatch, run_main: RunMain
) -> None:
    path = config(repo, GOOD, name="other.toml")
    monkeypatch.setenv("PREBUILD_CONFIG", str(path))
    monkeypatch.setenv("PREBUILD_REGISTRY", "http://127.0.0.1:5000")
    code, out, err = run_main(["validate"])
    assert (code, out) == (2, "")
    assert err == (
        "error: env PREBUILD_REGISTRY at key 'registry': invalid registry "
        "'http://127.0.0.1:5000': drop the scheme 'http://' "
        "(set by env PREBUILD_REGISTRY=http://127.0.0.1:5000)\n"
    )
    monkeypatch.setenv("PREBUILD_REGISTRY", "127.0.0.1:5000")
    assert run_main(["validate"])[:2] == (
        0,
        "ok: 2 images from other.toml\n"
        "base        ci/base/Dockerfile   linux/amd64,linux/arm64\n"
        "tools/lint  ci/tools/Dockerfile  linux\n",
    )


def test_missing_config(repo: Path, run_main: RunMain) -> None:
    code, out, err = run_main(["validate", "-c", "missing.toml"])
    assert (code, out) == (2, "")
    assert err == (
        f"error: {repo / 'missing.toml'}: config file not found: {repo / 'missing.toml'} "
        "(given by -c/--config)\n"
    )


def test_one_error(repo: Path, run_main: RunMain) -> None:
    config(repo, GOOD.replace('"linux/arm64"', '"linux/arm46"'))
    assert run_main(["validate"]) == (
        2,
        "",
        "error: prebuild.toml:5 at key 'image 'base' (image[0]).platforms[1]': "
        "unknown platform 'linux/arm46' (did you mean 'linux/arm64'?)\n",
    )


def test_all_errors_one_per_line(repo: Path, run_main: RunMain) -> None:
    text = GOOD.replace('depends_on = ["base"]', 'depends_on = ["bas"]\nrefresh = "1y"')
    config(repo, text + 'contxt = "x"\n')
    code, out, err = run_main(["validate"])
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: 2 problems in prebuild.toml:",
        "prebuild.toml:10 at key 'image 'tools/lint' (image[1]).refresh': invalid duration '1y': "
        "expected a duration like '90s', '30m', '12h', '7d', '2w' or '1d12h' "
        "(units in w d h m s order)",
        "prebuild.toml:11 at key 'image 'tools/lint' (image[1]).contxt': "
        "unknown key 'contxt' (did you mean 'context'?)",
    ]
    # with the schema fixed, the cross-key checks run
    config(repo, GOOD.replace('depends_on = ["base"]', 'depends_on = ["bas"]'))
    assert run_main(["validate"])[2] == (
        "error: prebuild.toml:9 at key 'image 'tools/lint' (image[1]).depends_on[0]': "
        "depends_on names unknown image 'bas' (did you mean 'base'?)\n"
    )


def test_group_help_lists_validate() -> None:
    result = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "validate" in result.output
