"""Config loading: good configs become the expected Project, bad ones fail located (exit 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from prebuild.cache.backends import s3_attributes
from prebuild.config.discover import find_config
from prebuild.config.load import ConfigErrors, load_project
from prebuild.config.locate import TomlLocator, header_before
from prebuild.durations import format_duration, parse_duration
from prebuild.errors import EXIT_USAGE, ConfigError
from prebuild.model import ImageSpec, Origin, Project
from prebuild.sources import SOURCE_KINDS


def write(root: Path, text: str, *, name: str = "prebuild.toml", dockerfiles=("ci/base",)) -> Path:
    """A config file plus a Dockerfile in each of `dockerfiles` (directories under root)."""
    for directory in dockerfiles:
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / "Dockerfile").write_text("FROM scratch\n")
    path = root / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def load(root: Path, env: dict[str, str] | None = None, config: Path | None = None) -> Project:
    return load_project(config, cwd=root, env=env or {})


def error(root: Path, text: str | None = None, **kwargs) -> ConfigError:
    """The ConfigError loading `text` raises; always exit code 2."""
    if text is not None:
        write(root, text, dockerfiles=kwargs.pop("dockerfiles", ("ci/base",)))
    with pytest.raises(ConfigError) as caught:
        load(root, **kwargs)
    assert caught.value.exit_code == EXIT_USAGE
    return caught.value


BASE = """
registry = "ghcr.io/org/ci"
[[image]]
name = "base"
context = "ci/base"
"""


# -- good configs ------------------------------------------------------------------------------


def test_minimal_config(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    project = load(tmp_path)
    assert project.config_file == tmp_path / "prebuild.toml"
    assert project.repo_root == tmp_path
    assert project.settings.registry == "ghcr.io/org/ci"
    (spec,) = project.images
    assert spec.name == "base"
    assert spec.context == tmp_path / "ci/base"
    assert spec.dockerfile == tmp_path / "ci/base/Dockerfile"
    assert spec.platforms == ("linux",)
    assert spec.tags == ("latest",)
    assert spec.cache.backend == "registry"
    assert spec.cache.ref == "ghcr.io/org/ci/base:buildcache"
    assert spec.origin == Origin("prebuild.toml", 2, "image 'base' (image[0])")


def test_defaults_merge(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        registry = "127.0.0.1:5000/ci"
        insecure_registries = ["10.0.0.1:5000"]
        builder = "ci"
        jobs = 3
        [defaults]
        platforms = ["linux/amd64", "linux/arm64"]
        build_args = { A = "1", B = "2", N = 3, F = true }
        labels = { team = "ci" }
        refresh = "1d12h"
        tags = ["latest", "stable"]
        inputs = ["ci/common/*.sh"]
        [gc]
        keep = 3
        max_age = "2w"
        grace = "12h"
        after_build = true
        [[image]]
        name = "base"
        context = "ci/base"
        target = "final"
        build_args = { B = "override" }
        labels = { role = "base" }
        [[image]]
        name = "tools/lint"
        dockerfile = "ci/base/Dockerfile"
        platforms = ["linux"]
        refresh = "90s"
        tags = []
        inputs = ["extra/file"]
        depends_on = ["base"]
        """,
    )
    project = load(tmp_path)
    settings = project.settings
    assert settings.insecure_registries == ("10.0.0.1:5000",)
    assert (settings.builder, settings.jobs, settings.keep) == ("ci", 3, 3)
    assert (settings.max_age_seconds, settings.grace_seconds) == (14 * 86400, 12 * 3600)
    assert settings.gc_after_build is True
    base, lint = project.images
    assert base.build_args == {"A": "1", "B": "override", "N": "3", "F": "true"}
    assert base.labels == {"team": "ci", "role": "base"}
    assert base.platforms == ("linux/amd64", "linux/arm64")
    assert base.refresh_seconds == 36 * 3600
    assert base.tags == ("latest", "stable")
    assert base.extra_inputs == ("ci/common/*.sh",)
    assert base.target == "final"
    assert lint.context == tmp_path  # default context: the repo root
    assert lint.dockerfile == tmp_path / "ci/base/Dockerfile"
    assert lint.platforms == ("linux",)
    assert lint.refresh_seconds == 90
    assert lint.tags == ()
    assert lint.extra_inputs == ("extra/file",)
    assert lint.depends_on == ("base",)
    assert project.image("tools/lint") is lint


def test_cache_templates_expand_per_image(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        registry = "ghcr.io/org/ci"
        [cache]
        ref = "{registry}/cache:{name}"
        mode = "min"
        extra_from = ["{registry}/{name}:buildcache-main"]
        [cache.s3]
        bucket = "b"
        endpoint_url = "http://127.0.0.1:9000"
        use_path_style = true
        prefix = "cache/{name}/"
        touch_refresh = "24h"
        [[image]]
        name = "base"
        context = "ci/base"
        [[image]]
        name = "other"
        context = "ci/base"
        cache = { backend = "s3-sync", s3 = { region = "eu-west-1" }, ignore_error = false }
        [[image]]
        name = "off"
        context = "ci/base"
        cache = { backend = "none" }
        """,
    )
    base, other, off = load(tmp_path).images
    assert base.cache.ref == "ghcr.io/org/ci/cache:base"
    assert base.cache.mode == "min"
    assert base.cache.extra_from == ("ghcr.io/org/ci/base:buildcache-main",)
    assert base.cache.s3 is not None and base.cache.s3.prefix == "cache/base/"
    assert other.cache.backend == "s3-sync"
    assert other.cache.ignore_error is False and other.cache.mode == "min"
    s3 = other.cache.s3
    assert s3 is not None
    assert (s3.bucket, s3.region, s3.prefix, s3.name) == ("b", "eu-west-1", "cache/other/", "other")
    assert (s3.endpoint_url, s3.use_path_style, s3.touch_refresh) == (
        "http://127.0.0.1:9000",
        True,
        "24h",
    )
    assert off.cache.backend == "none"
    assert off.cache.ref == "ghcr.io/org/ci/cache:off"  # set explicitly, so still expanded


def test_pyproject_tool_table(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [project]
        name = "x"

        [tool.prebuild]
        registry = "ghcr.io/org/ci"

        [[tool.prebuild.image]]
        name = "base"
        context = "ci/base"
        """,
        name="pyproject.toml",
    )
    sub = tmp_path / "ci" / "base"
    project = load(sub)  # discovery walks up from a subdirectory
    assert project.config_file == tmp_path / "pyproject.toml"
    assert project.repo_root == tmp_path
    assert project.images[0].origin == Origin(
        str(tmp_path / "pyproject.toml"), 7, "image 'base' (image[0])"
    )


def test_pyproject_without_tool_table_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(cwd=tmp_path / "sub", env={}) == tmp_path / "prebuild.toml"


def test_prebuild_config_env_and_registry_env(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    write(other, BASE, name="custom.toml")
    env = {"PREBUILD_CONFIG": str(other / "custom.toml"), "PREBUILD_REGISTRY": "localhost:5000/x"}
    project = load(tmp_path, env)
    assert project.config_file == other / "custom.toml"
    assert project.repo_root == other
    assert project.settings.registry == "localhost:5000/x"
    assert project.images[0].cache.ref == "localhost:5000/x/base:buildcache"


def test_s3_endpoint_env_moves_every_s3_cache(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        registry = "ghcr.io/org/ci"
        [[image]]
        name = "base"
        context = "ci/base"
        [[image]]
        name = "synced"
        context = "ci/base"
        [image.cache]
        backend = "s3-sync"
        s3 = { bucket = "b", endpoint_url = "http://127.0.0.1:35001", use_path_style = true }
        [[image]]
        name = "native"
        context = "ci/base"
        cache = { backend = "s3", s3 = { bucket = "c" } }
        """,
    )
    as_written = {spec.name: spec.cache.s3 for spec in load(tmp_path).images}
    assert as_written["synced"] is not None
    assert as_written["synced"].endpoint_url == "http://127.0.0.1:35001"
    moved = load(tmp_path, {"PREBUILD_S3_ENDPOINT_URL": "http://127.0.0.1:37001"})
    base, synced, native = moved.images
    assert base.cache.backend == "registry" and base.cache.s3 is None
    for spec in (synced, native):
        assert spec.cache.s3 is not None
        assert spec.cache.s3.endpoint_url == "http://127.0.0.1:37001"
    assert synced.cache.s3 is not None and synced.cache.s3.use_path_style  # the rest is kept
    assert s3_attributes(native.cache.s3, "native")["endpoint_url"] == "http://127.0.0.1:37001"


def test_explicit_config_beats_env(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    env = {"PREBUILD_CONFIG": str(tmp_path / "nope.toml")}
    assert load(tmp_path, env, config=Path("prebuild.toml")).config_file == path
    assert load(tmp_path, {}, config=tmp_path).config_file == path  # a directory works too


def test_registry_env_satisfies_missing_registry(tmp_path: Path) -> None:
    write(tmp_path, '[[image]]\nname = "base"\ncontext = "ci/base"\n')
    project = load(tmp_path, {"PREBUILD_REGISTRY": "127.0.0.1:5000"})
    assert project.settings.registry == "127.0.0.1:5000"


def test_no_images_is_valid(tmp_path: Path) -> None:
    write(tmp_path, 'registry = "r.example"\n')
    assert load(tmp_path).images == ()


# -- bad configs: each names file, line and key ------------------------------------------------


def test_missing_explicit_file(tmp_path: Path) -> None:
    err = error(tmp_path, config=Path("nope.toml"))
    assert str(tmp_path / "nope.toml") in str(err)
    assert "config file not found" in str(err) and "-c/--config" in str(err)


def test_missing_file_from_env(tmp_path: Path) -> None:
    err = error(tmp_path, env={"PREBUILD_CONFIG": "gone.toml"})
    message = f"config file not found: {tmp_path / 'gone.toml'} (given by env PREBUILD_CONFIG)"
    assert message in str(err)


def test_nothing_found(tmp_path: Path) -> None:
    err = error(tmp_path)
    message = f"no prebuild.toml or pyproject.toml with [tool.prebuild] found in {tmp_path} "
    assert message in str(err)
    assert err.hint and "PREBUILD_CONFIG" in err.hint


def test_bad_toml_syntax(tmp_path: Path) -> None:
    err = error(tmp_path, 'registry = "r"\n[[image]]\nname = "a"\ncontext = \n')
    assert str(err) == "prebuild.toml:4 at key 'image[0]': invalid TOML: Invalid value (column 11)"
    assert (err.file, err.line, err.key) == ("prebuild.toml", 4, "image[0]")


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + 'dockerfle = "x"\n')
    assert str(err) == (
        "prebuild.toml:5 at key 'image 'base' (image[0]).dockerfle': "
        "unknown key 'dockerfle' (did you mean 'dockerfile'?)"
    )


def test_unknown_key_in_nested_table(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + "[cache]\nmod = 'min'\n[cache.s3]\nbuckt = 'b'\n")
    assert isinstance(err, ConfigErrors)
    assert [str(e) for e in err.errors] == [
        "prebuild.toml:6 at key 'cache.mod': unknown key 'mod' (did you mean 'mode'?)",
        "prebuild.toml:8 at key 'cache.s3.buckt': unknown key 'buckt' (did you mean 'bucket'?)",
    ]


def test_wrong_type(tmp_path: Path) -> None:
    err = error(tmp_path, BASE.replace('registry = "ghcr.io/org/ci"', 'registry = "r"\njobs = "2"'))
    assert str(err) == "prebuild.toml:2 at key 'jobs': expected an integer, got string '2'"


def test_wrong_type_in_inline_table(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + "build_args = { A = [1] }\n")
    assert str(err) == (
        "prebuild.toml:5 at key 'image 'base' (image[0]).build_args.A': "
        "expected a string, got array [1]"
    )


def test_unknown_dependency(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + 'depends_on = ["bsae"]\n')
    assert str(err) == (
        "prebuild.toml:5 at key 'image 'base' (image[0]).depends_on[0]': "
        "depends_on names unknown image 'bsae' (did you mean 'base'?)"
    )


def test_dependency_cycle(tmp_path: Path) -> None:
    text = BASE + 'depends_on = ["b"]\n'
    text += '[[image]]\nname = "b"\ncontext = "ci/base"\ndepends_on = ["base"]\n'
    err = error(tmp_path, text)
    assert str(err) == (
        "prebuild.toml:5 at key 'image 'base' (image[0]).depends_on': "
        "dependency cycle: base -> b -> base"
    )


def test_missing_dockerfile(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + 'dockerfile = "ci/base/Dockerfile.ci"\n')
    assert str(err) == (
        "prebuild.toml:5 at key 'image 'base' (image[0]).dockerfile': "
        "Dockerfile not found: ci/base/Dockerfile.ci"
    )


def test_missing_default_dockerfile_points_at_context(tmp_path: Path) -> None:
    err = error(tmp_path, BASE, dockerfiles=())
    assert str(err) == (
        "prebuild.toml:4 at key 'image 'base' (image[0]).context': context directory not found: "
        "ci/base"
    )
    (tmp_path / "ci/base").mkdir(parents=True)
    err = error(tmp_path)
    assert str(err).startswith(
        "prebuild.toml:4 at key 'image 'base' (image[0]).dockerfile': "
        "Dockerfile not found: ci/base/Dockerfile (the default <context>/Dockerfile"
    )


def test_bad_duration(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + 'refresh = "7 days"\n')
    assert str(err).startswith(
        "prebuild.toml:5 at key 'image 'base' (image[0]).refresh': invalid duration '7 days'"
    )
    err = error(tmp_path, BASE + "[gc]\nmax_age = 7\n")
    assert str(err).startswith("prebuild.toml:6 at key 'gc.max_age': expected a duration")


def test_bad_platform(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + 'platforms = [\n  "linux/amd64",\n  "linux/amd46",\n]\n')
    assert str(err) == (
        "prebuild.toml:7 at key 'image 'base' (image[0]).platforms[1]': "
        "unknown platform 'linux/amd46' (did you mean 'linux/amd64'?)"
    )
    err = error(tmp_path, BASE + 'platforms = ["plan9/x"]\n')
    assert "unknown platform 'plan9/x'; known: linux, linux/amd64," in str(err)
    err = error(tmp_path, BASE + 'platforms = ["amd64"]\n')
    assert "unknown platform 'amd64' (expected os/arch[/variant])" in str(err)


def test_duplicate_name_reports_second(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + BASE.split("\n", 2)[2])
    assert str(err) == (
        "prebuild.toml:6 at key 'image 'base' (image[1]).name': "
        "duplicate image name 'base' (first defined at prebuild.toml:2)"
    )


def test_s3_without_bucket(tmp_path: Path) -> None:
    err = error(tmp_path, BASE + '[cache]\nbackend = "s3"\n')
    assert str(err) == (
        "prebuild.toml:6 at key 'cache.s3.bucket': "
        "cache backend 's3' needs [cache.s3] with a bucket"
    )
    err = error(tmp_path, BASE + 'cache = { backend = "s3-sync" }\n')
    assert str(err).startswith("prebuild.toml:5 at key 'image 'base' (image[0]).cache': ")
    assert "cache backend 's3-sync' needs a bucket" in str(err)


@pytest.mark.parametrize(
    ("registry", "reason"),
    [
        ("https://ghcr.io/org", "drop the scheme 'https://'"),
        ("ghcr.io/org/ci:latest", "no tag"),
        ("ghcr.io/Org", "expected host[:port][/path]"),
        ("ghcr.io/org/", "expected host[:port][/path]"),
        ("", "expected host[:port][/path]"),
        ("ghcr.io/org@sha256:abc", "no digest"),
    ],
)
def test_bad_registry(tmp_path: Path, registry: str, reason: str) -> None:
    err = error(tmp_path, BASE.replace("ghcr.io/org/ci", registry))
    assert str(err).startswith(f"prebuild.toml:1 at key 'registry': invalid registry {registry!r}")
    assert reason in str(err)


def test_bad_registry_from_env_blames_env(tmp_path: Path) -> None:
    err = error(tmp_path, BASE, env={"PREBUILD_REGISTRY": "http://localhost:5000"})
    assert str(err).startswith("env PREBUILD_REGISTRY at key 'registry': invalid registry")


def test_bad_image_name_and_missing_key(tmp_path: Path) -> None:
    err = error(tmp_path, '[[image]]\nname = "Base"\n[[image]]\ncontext = "."\n')
    assert isinstance(err, ConfigErrors)
    assert [(e.line, e.key) for e in err.errors] == [
        (1, "registry"),
        (2, "image 'Base' (image[0]).name"),
        (3, "image[1].name"),
    ]
    assert "missing required key 'registry'" in str(err.errors[0])
    assert "invalid image name 'Base'" in str(err.errors[1])


def test_several_errors_reported_together(tmp_path: Path) -> None:
    text = (
        'registry = "r"\njobs = 0\n[defaults]\nrefresh = "soon"\n[[image]]\nname = "a"\nfoo = 1\n'
    )
    err = error(tmp_path, text)
    assert isinstance(err, ConfigErrors)
    lines = str(err).splitlines()
    assert lines[0] == "3 problems in prebuild.toml:"
    assert [line.split(" ", 1)[0] for line in lines[1:]] == [
        "prebuild.toml:2",
        "prebuild.toml:4",
        "prebuild.toml:7",
    ]


def test_pyproject_errors_use_pyproject_lines(tmp_path: Path) -> None:
    text = '[project]\nname = "x"\n\n[tool.prebuild]\nregistry = "r"\njobs = "x"\n'
    write(tmp_path, text, name="pyproject.toml")
    err = error(tmp_path)
    assert str(err) == "pyproject.toml:6 at key 'jobs': expected an integer, got string 'x'"


def test_explicit_pyproject_without_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    err = error(tmp_path, config=Path("pyproject.toml"))
    assert (
        str(err)
        == "pyproject.toml: no [tool.prebuild] table\nhint: or put the config in prebuild.toml"
    )


# -- sources -----------------------------------------------------------------------------------


class FakeSource(BaseModel):
    """A source kind for tests: one image per name, starting from the defaults."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["fake"]
    names: list[str]

    def images(self, *, repo_root: Path, config_file: Path, defaults: ImageSpec) -> list[ImageSpec]:
        from dataclasses import replace

        return [replace(defaults, name=name) for name in self.names]


def test_source_kind_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCE_KINDS, "fake", FakeSource)
    text = BASE + '[defaults]\ncontext = "ci/base"\n[[source]]\nkind = "fake"\nnames = ["x"]\n'
    write(tmp_path, text)
    project = load(tmp_path)
    base, x = project.images
    assert x.cache.ref == "ghcr.io/org/ci/x:buildcache"
    assert x.dockerfile == tmp_path / "ci/base/Dockerfile"
    assert x.origin == Origin("prebuild.toml", 7, "image 'x' (source[0])")


def test_source_errors_are_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCE_KINDS, "fake", FakeSource)
    text = BASE + '[[source]]\nkind = "fak"\n[[source]]\nkind = "fake"\nnmes = []\n'
    err = error(tmp_path, text)
    assert isinstance(err, ConfigErrors)
    messages = [str(e) for e in err.errors]
    assert messages[0].startswith(
        "prebuild.toml:6 at key 'source[0].kind': unknown source kind 'fak' (did you mean 'fake'?)"
    )
    assert "prebuild.toml:7 at key 'source[1].names': missing required key 'names'" in messages
    assert (
        "prebuild.toml:9 at key 'source[1].nmes': unknown key 'nmes' (did you mean 'names'?)"
        in messages
    )


def test_source_images_join_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCE_KINDS, "fake", FakeSource)
    text = BASE + '[defaults]\ncontext = "ci/base"\n[[source]]\nkind = "fake"\nnames = ["base"]\n'
    err = error(tmp_path, text)
    assert str(err) == (
        "prebuild.toml:7 at key 'image 'base' (source[0]).name': "
        "duplicate image name 'base' (first defined at prebuild.toml:2)"
    )


# -- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("1d12h", 129600),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "7", "7days", "1h1d", "0s", "-1h", "1.5h", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_locator_tracks_tables_arrays_and_inline_values() -> None:
    text = textwrap.dedent(
        """
        registry = "r"  # comment
        [cache]
        s3.bucket = "b"
        [[image]]
        name = "a"
        s = \"\"\"
        [[image]] not a header
        \"\"\"
        [image.cache]
        mode = "min"
        [[image]]
        name = 'b'
        platforms = [
          "linux/amd64",  # first
          "linux/arm64",
        ]
        cache = { backend = "none", s3 = { name = "n" } }
        """
    ).lstrip()
    locator = TomlLocator(text)
    assert locator.line_of(("registry",)) == 1
    assert locator.line_of(("cache", "s3", "bucket")) == 3
    assert locator.line_of(("image", 0, "cache", "mode")) == 10
    assert locator.line_of(("image", 1)) == 11
    assert locator.line_of(("image", 1, "platforms", 1)) == 15
    assert locator.line_of(("image", 1, "cache", "s3", "name")) == 17
    assert locator.line_of(("image", 1, "unknown", 3)) == 11  # falls back to the header
    assert locator.line_of(("nothing",)) is None
    assert header_before(text, 13) == "image[1]"


def test_locator_never_raises_on_garbage() -> None:
    assert TomlLocator('a = [1, {\nb = "').line_of(("a",)) == 1


def test_history_defaults_to_the_registry_and_dir_paths_are_config_relative(
    tmp_path: Path,
) -> None:
    from prebuild.config.load import load_project

    (tmp_path / "prebuild.toml").write_text('registry = "127.0.0.1:5000/ci"\n')
    assert load_project(tmp_path / "prebuild.toml").settings.history.store == "registry"
    (tmp_path / "prebuild.toml").write_text(
        'registry = "127.0.0.1:5000/ci"\n[history]\nstore = "dir"\npath = "state/history"\n'
    )
    history = load_project(tmp_path / "prebuild.toml").settings.history
    assert (history.store, history.path) == ("dir", tmp_path / "state" / "history")
