"""Dockerfile analysis: what a build of one target reads, interpreted as BuildKit does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from prebuild.analysis.parse import (
    ContextSource,
    DockerfileAnalysis,
    ExternalRef,
    analyse,
    read_dockerfile,
)
from prebuild.analysis.words import Env, ShellSyntaxError, expand
from prebuild.errors import ConfigError


def run(text: str, build_args: dict[str, str] | None = None, target: str | None = None):
    return analyse(
        textwrap.dedent(text).lstrip("\n"),
        build_args=build_args or {},
        target=target,
        file="ci/Dockerfile",
    )


def patterns(analysis: DockerfileAnalysis) -> list[str]:
    return [s.pattern for s in analysis.sources]


def refs(analysis: DockerfileAnalysis) -> list[tuple[str, str]]:
    return [(r.ref, r.kind) for r in analysis.external_refs]


# --- sources, paths and forms ---------------------------------------------------------------


def test_copy_and_add_sources_are_normalized_relative_to_the_context_root():
    a = run(
        """
        FROM scratch
        COPY ./src/ /app/src/
        COPY /etc/config.toml ../../escape.txt /app/
        COPY . /all
        ADD vendor.tar.gz /opt/
        """
    )
    assert patterns(a) == ["src", "etc/config.toml", "escape.txt", "", "vendor.tar.gz"]
    assert [s.line for s in a.sources] == [2, 3, 3, 4, 5]
    assert a.whole_context_reasons == ()


def test_globs_are_kept_verbatim_for_inputs_to_match():
    a = run("FROM scratch\nCOPY scripts/*.sh conf/[ab]?.ini /x/\n")
    assert patterns(a) == ["scripts/*.sh", "conf/[ab]?.ini"]


def test_json_form_keeps_spaces_in_sources():
    a = run('FROM scratch\nCOPY ["my dir/a b.txt", "c", "/dst/"]\n')
    assert patterns(a) == ["my dir/a b.txt", "c"]


def test_heredocs_have_no_context_input():
    a = run(
        """
        FROM scratch
        COPY <<EOF /etc/motd
        hello
        EOF
        COPY <<-"A" real.txt <<B /dst/
        x
        A
        y
        B
        RUN <<EOF
        echo hi > /x
        EOF
        """
    )
    assert patterns(a) == ["real.txt"]
    assert a.whole_context_reasons == ()


def test_bare_heredoc_operator_is_a_path():
    assert patterns(run("FROM scratch\nCOPY << /x\n")) == ["<<"]


def test_copy_flags_are_understood_and_excludes_recorded():
    a = run(
        """
        FROM scratch
        ARG DOCS=md
        COPY --chmod=755 --chown=1:1 --link --exclude=*.${DOCS} --exclude=tmp docs /docs
        ADD --exclude=*.log --link=false logs /logs
        """
    )
    assert a.sources == (
        ContextSource("docs", 3, excludes=("*.md", "tmp")),
        ContextSource("logs", 4, excludes=("*.log",)),
    )
    assert a.whole_context_reasons == ()


def test_parents_flag_records_the_pivot():
    a = run("FROM scratch\nCOPY --parents ./apps/./**/go.mod lib/*.go /src/\n")
    assert a.sources == (
        ContextSource("apps/**/go.mod", 2, parents=True, pivot="apps"),
        ContextSource("lib/*.go", 2, parents=True, pivot=""),
    )


def test_duplicate_sources_are_listed_once():
    a = run("FROM scratch\nCOPY a.txt /x\nCOPY a.txt /y\n")
    assert [s.pattern for s in a.sources] == ["a.txt", "a.txt"]  # different lines
    b = run("FROM scratch\nCOPY a.txt a.txt /x/\n")
    assert patterns(b) == ["a.txt"]


# --- ADD of remote sources --------------------------------------------------------------------


def test_add_url_is_not_hermetic_but_needs_no_whole_context():
    a = run("FROM scratch\nADD https://example.com/tool.tgz /opt/\n")
    assert a.sources == ()
    assert a.whole_context_reasons == ()
    assert a.non_hermetic == ("line 2: ADD https://example.com/tool.tgz",)
    assert "line 2: ADD of a URL is not hermetic; use refresh" in a.notes


@pytest.mark.parametrize(
    "src",
    ["git@github.com:moby/buildkit.git#v0.13", "https://github.com/moby/buildkit.git", "git://h/r"],
)
def test_add_git_is_not_hermetic(src):
    a = run(f"FROM scratch\nADD {src} /src\n")
    assert a.non_hermetic == (f"line 2: ADD {src}",)
    assert any("git repository is not hermetic" in n for n in a.notes)
    assert a.sources == ()


def test_add_pinned_by_checksum_or_commit_is_hermetic():
    a = run(
        """
        FROM scratch
        ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d \\
            https://example.com/tool.tgz /opt/
        ADD https://github.com/a/b.git#0123456789abcdef0123456789abcdef01234567 /src
        """
    )
    assert a.non_hermetic == ()
    assert sum("pinned" in n for n in a.notes) == 2


def test_add_url_with_unknown_variable_is_still_only_non_hermetic():
    a = run("FROM alpine\nARG V\nADD https://example.com/${V}/x.tgz /opt/\n")
    assert a.whole_context_reasons == ()
    assert a.non_hermetic == ("line 3: ADD https://example.com/${V}/x.tgz",)


def test_add_with_an_unknown_source_may_be_a_url():
    a = run("FROM alpine\nADD ${SOURCE} /opt/\n")
    assert a.whole_context_reasons and a.sources == ()
    assert a.non_hermetic == ("line 2: ADD ${SOURCE} (may be a URL)",)


def test_git_lookalike_local_path_is_a_context_source():
    a = run("FROM scratch\nADD git@notaurl /x\n")
    assert patterns(a) == ["git@notaurl"]


# --- ARG / ENV expansion ---------------------------------------------------------------------


def test_global_args_expand_in_from_with_defaults_and_overrides():
    text = """
        ARG REGISTRY=127.0.0.1:5000
        ARG BASE=${REGISTRY}/seed/busybox
        ARG TAG=latest
        FROM ${BASE}:${TAG}
        """
    assert refs(run(text, {"TAG": "stable"})) == [("127.0.0.1:5000/seed/busybox:stable", "from")]
    overridden = run(text, {"REGISTRY": "ghcr.io/org"})
    assert refs(overridden) == [("ghcr.io/org/seed/busybox:latest", "from")]


def test_global_arg_is_not_visible_in_copy_unless_redeclared():
    hidden = run("ARG SRC=app\nFROM scratch\nCOPY ${SRC}/main.go /x/\n")
    assert patterns(hidden) == ["main.go"]
    seen = run("ARG SRC=app\nFROM scratch\nARG SRC\nCOPY ${SRC}/main.go /x/\n")
    assert patterns(seen) == ["app/main.go"]
    passed = run("ARG SRC=app\nFROM scratch\nARG SRC\nCOPY ${SRC}/main.go /x/\n", {"SRC": "lib"})
    assert patterns(passed) == ["lib/main.go"]


def test_undeclared_build_arg_is_not_visible():
    a = run("FROM scratch\nCOPY ${SRC}main.go /x/\n", {"SRC": "lib/"})
    assert patterns(a) == ["main.go"]


def test_stage_arg_default_is_overridden_by_build_arg():
    text = "FROM scratch\nARG DIR=src\nCOPY $DIR /x\n"
    assert patterns(run(text)) == ["src"]
    assert patterns(run(text, {"DIR": "other"})) == ["other"]


def test_arg_without_default_is_empty_on_scratch_unless_passed():
    text = "FROM scratch\nARG SUFFIX\nCOPY conf${SUFFIX}.toml /x\n"
    assert patterns(run(text)) == ["conf.toml"]
    assert patterns(run(text, {"SUFFIX": "-ci"})) == ["conf-ci.toml"]


def test_unset_variable_on_an_image_base_may_come_from_its_env():
    a = run("FROM golang:1.22\nARG SUFFIX\nCOPY conf${SUFFIX}.toml /x\n")
    assert a.sources == ()
    (reason,) = a.whole_context_reasons
    assert reason.startswith("line 3: COPY source 'conf${SUFFIX}.toml' depends on $SUFFIX")
    assert "base image" in reason
    passed = run("FROM golang:1.22\nARG SUFFIX\nCOPY conf${SUFFIX}.toml /x\n", {"SUFFIX": ""})
    assert patterns(passed) == ["conf.toml"]


def test_env_is_used_and_overrides_an_arg_of_the_same_name():
    a = run("FROM alpine\nARG DIR=from-arg\nENV DIR=from-env\nCOPY $DIR /x\n", {"DIR": "cli"})
    assert patterns(a) == ["from-env"]


def test_env_forms_and_pairs_see_the_env_before_the_instruction():
    a = run(
        """
        FROM alpine
        ENV A=old
        ENV A=new B=$A C="two words" \\
            D=${A}-d
        ENV LEGACY some value
        COPY $B $C $D "$LEGACY" /x/
        """
    )
    assert patterns(a) == ["old", "two words", "old-d", "some value"]


def test_stage_inherits_env_and_args_from_its_parent_stage():
    a = run(
        """
        FROM alpine AS base
        ENV APP=service
        ARG VERSION=1.2
        FROM base AS build
        COPY $APP-$VERSION.tar /x
        """
    )
    assert patterns(a) == ["service-1.2.tar"]
    assert a.stages_used == ("base", "build")


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${SET:-fallback}", "value"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("$SET/x", "value/x"),
        ("${SET}x", "valuex"),
        ("'$SET'", "$SET"),
        ("\\$SET", "$SET"),
    ],
)
def test_expansion_forms(word, expected):
    a = run(f"FROM scratch\nARG SET=value\nARG EMPTY=\nCOPY pre-{word} /x\n")
    assert patterns(a) == [f"pre-{expected}"]


def test_expansion_we_cannot_do_soundly_falls_back_to_whole_context():
    a = run("FROM scratch\nARG F=a.tar.gz\nCOPY ${F%.gz} /x\n")
    assert a.sources == ()
    assert a.whole_context_reasons == (
        "line 3: COPY source '${F%.gz}' depends on ${F%...}: this expansion form is not analysed",
    )


def test_escape_directive_changes_the_escape_token():
    a = run("# escape=`\nFROM scratch\nCOPY a`$b /x\n")
    assert patterns(a) == ["a$b"]


# --- platform args ---------------------------------------------------------------------------


def test_platform_flag_with_automatic_args_is_fine():
    a = run("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nCOPY go.mod /src/\n")
    assert patterns(a) == ["go.mod"]
    assert a.whole_context_reasons == ()


def test_copy_depending_on_automatic_platform_arg_needs_build_args():
    text = "FROM alpine\nARG TARGETARCH\nCOPY bin/tool-${TARGETARCH} /usr/bin/tool\n"
    unknown = run(text)
    assert unknown.sources == ()
    assert "pass TARGETARCH in build_args" in unknown.whole_context_reasons[0]
    assert patterns(run(text, {"TARGETARCH": "arm64"})) == ["bin/tool-arm64"]


def test_from_depending_on_automatic_platform_arg_is_flagged():
    a = run("FROM tool-${TARGETARCH}\nCOPY a /a\n")
    assert a.external_refs == ()
    assert a.whole_context_reasons[0].startswith("line 1: FROM 'tool-${TARGETARCH}' depends on")
    assert refs(run("FROM tool-${TARGETARCH}\n", {"TARGETARCH": "amd64"})) == [
        ("tool-amd64", "from")
    ]


# --- stages ----------------------------------------------------------------------------------


MULTI = """
    FROM golang:1.22 AS build
    COPY go.mod go.sum /src/
    COPY cmd/ /src/cmd/

    FROM alpine:3.19 AS docs
    COPY docs/ /docs/

    FROM scratch AS test
    COPY --from=build /out/tool /tool
    COPY testdata /testdata

    FROM debian:12
    COPY --from=build /out/tool /usr/bin/tool
    COPY entrypoint.sh /
    """


def test_default_target_is_the_last_stage_and_unused_stages_are_not_inputs():
    a = run(MULTI)
    assert a.target_stage == "3"
    assert a.stages_used == ("build", "3")
    assert patterns(a) == ["go.mod", "go.sum", "cmd", "entrypoint.sh"]
    assert "docs" not in patterns(a) and "testdata" not in patterns(a)
    assert refs(a) == [("golang:1.22", "from"), ("debian:12", "from")]
    assert "stages not built for this target: docs, test" in a.notes


def test_named_target_only_uses_the_stages_it_depends_on():
    a = run(MULTI, target="Test")
    assert a.target_stage == "test"
    assert a.stages_used == ("build", "test")
    assert patterns(a) == ["go.mod", "go.sum", "cmd", "testdata"]
    assert refs(a) == [("golang:1.22", "from")]


def test_unknown_target_is_a_config_error():
    with pytest.raises(ConfigError, match="target stage 'nope' could not be found") as err:
        run(MULTI, target="nope")
    assert err.value.file == "ci/Dockerfile"


def test_copy_from_stage_has_no_context_input_but_uses_the_stage():
    a = run("FROM alpine AS a\nCOPY x /x\nFROM scratch AS b\nCOPY --from=a /x /x\n")
    assert a.stages_used == ("a", "b")
    assert patterns(a) == ["x"]  # from stage a, not from b's COPY --from
    assert "line 4: reads stage 'a', not the build context" in a.notes


def test_copy_from_stage_index():
    a = run(
        """
        FROM alpine
        COPY one /x
        FROM scratch AS unused
        COPY two /
        FROM scratch
        COPY --from=0 /x /x
        """
    )
    assert a.stages_used == ("0", "2")
    assert patterns(a) == ["one"]


def test_copy_from_image_is_an_external_ref():
    a = run("FROM scratch\nCOPY --from=127.0.0.1:5000/seed/busybox:stable /bin/sh /sh\n")
    assert a.external_refs == (ExternalRef("127.0.0.1:5000/seed/busybox:stable", 2, "copy-from"),)
    assert a.sources == ()


def test_from_stage_and_scratch_are_not_external():
    a = run("FROM scratch AS base\nFROM base\n")
    assert a.external_refs == ()
    assert a.stages_used == ("base", "1")


def test_from_a_later_stage_name_is_an_image():
    a = run("FROM later\nFROM alpine AS later\n", target=None)
    assert a.stages_used == ("later",)
    b = run("FROM later AS first\nFROM alpine AS later\n", target="first")
    assert refs(b) == [("later", "from")]


def test_copy_from_a_later_stage_fails_like_buildkit():
    with pytest.raises(ConfigError, match="needs to be defined before") as err:
        run("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n", target="a")
    assert err.value.line == 2


def test_copy_from_with_a_variable_fails_like_buildkit():
    with pytest.raises(ConfigError, match="variable expansion is not supported for --from"):
        run("ARG S=a\nFROM scratch AS a\nFROM scratch\nCOPY --from=$S /x /x\n")


def test_invalid_stage_index_fails():
    with pytest.raises(ConfigError, match="invalid stage index 5"):
        run("FROM scratch\nCOPY --from=5 /x /x\n")


# --- RUN mounts ------------------------------------------------------------------------------


def test_run_bind_mount_reads_the_context():
    a = run(
        """
        FROM alpine
        ARG LOCK=go.sum
        RUN --mount=type=bind,source=go.mod,target=/src/go.mod \\
            --mount=src=$LOCK,dst=/src/go.sum go mod download
        RUN --mount=type=bind,target=/ctx ls /ctx
        """
    )
    assert patterns(a) == ["go.mod", "go.sum", ""]


def test_run_cache_secret_ssh_tmpfs_mounts_are_not_inputs():
    a = run(
        """
        FROM alpine
        RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=token \\
            --mount=type=ssh --mount=type=tmpfs,target=/tmp make
        """
    )
    assert a.sources == ()
    assert refs(a) == [("alpine", "from")]
    assert "line 2: secret 'token' is not part of the key" in a.notes


def test_run_mount_from_stage_or_image():
    a = run(
        """
        FROM alpine AS tools
        COPY tools/ /tools/
        FROM alpine AS unused
        FROM alpine
        RUN --mount=type=bind,from=tools,source=/tools,target=/t \\
            --mount=type=cache,from=seed/cache:1,target=/c \\
            --mount=type=bind,from=busybox,target=/bb make
        """
    )
    assert a.stages_used == ("tools", "2")
    assert patterns(a) == ["tools"]
    assert ("seed/cache:1", "mount-from") in refs(a)
    assert ("busybox", "mount-from") in refs(a)


def test_unsupported_mount_type_fails_only_in_a_used_stage():
    text = "FROM alpine AS odd\nRUN --mount=type=weird make\nFROM alpine\n"
    assert run(text).stages_used == ("1",)
    with pytest.raises(ConfigError, match="unsupported mount type"):
        run(text, target="odd")


# --- unsupported syntax -> whole context -----------------------------------------------------


def test_onbuild_needs_the_whole_context():
    a = run("FROM alpine\nONBUILD COPY . /app\n")
    assert a.whole_context_reasons == (
        "line 2: ONBUILD COPY runs in builds based on this stage and may read the build context",
    )


def test_unknown_instruction_and_flag_need_the_whole_context():
    a = run("FROM alpine\nFROBNICATE x\nCOPY --newflag=1 a /a\n")
    assert a.whole_context_reasons == (
        "line 2: unknown instruction 'FROBNICATE'",
        "line 3: unknown flag --newflag on COPY",
    )


def test_custom_frontend_needs_the_whole_context():
    a = run("# syntax=example.com/my/frontend:1\nFROM alpine\nCOPY a /a\n")
    assert a.whole_context_reasons[0].startswith("line 1: frontend 'example.com/my/frontend:1'")
    via_arg = run("FROM alpine\n", {"BUILDKIT_SYNTAX": "other/frontend"})
    assert via_arg.whole_context_reasons


@pytest.mark.parametrize(
    "syntax",
    [
        "docker/dockerfile:1",
        "docker/dockerfile:1.7-labs",
        "docker.io/docker/dockerfile:1.7.0@sha256:" + "a" * 64,
        "docker/dockerfile-upstream:master",
    ],
)
def test_official_frontends_are_analysed(syntax):
    a = run(f"# syntax={syntax}\nFROM alpine\nCOPY a /a\n")
    assert a.whole_context_reasons == ()
    assert patterns(a) == ["a"]


def test_unused_stage_problems_do_not_matter():
    a = run("FROM alpine AS odd\nONBUILD RUN x\nCOPY ${X%y} /\nFROM scratch\nCOPY a /\n")
    assert a.whole_context_reasons == ()
    assert patterns(a) == ["a"]


# --- errors ----------------------------------------------------------------------------------


def test_parse_error_is_a_located_config_error():
    with pytest.raises(ConfigError, match="cannot parse Dockerfile: unterminated heredoc") as err:
        run("FROM alpine\nRUN <<A\nok\nA\nRUN <<EOF\necho\n")
    assert (err.value.file, err.value.line) == ("ci/Dockerfile", 5)


def test_bad_expansion_in_a_used_stage_is_a_located_config_error():
    with pytest.raises(ConfigError, match="bad substitution") as err:
        run("FROM alpine\n\nCOPY ${} /x\n")
    assert (err.value.file, err.value.line) == ("ci/Dockerfile", 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("COPY a /a\n", "no stages"),
        ("ENV A=1\nFROM alpine\n", "ENV before the first FROM"),
        ("FROM alpine AS 1bad\n", "invalid name for build stage"),
        ("FROM a b\n", "FROM requires either one or three arguments"),
        ("FROM alpine\nCOPY onlyone\n", "COPY requires at least two arguments"),
        ("FROM ${EMPTY}\n", "base name .* should not be blank"),
        ("FROM alpine\nCOPY --from /a /b\n", "missing a value on flag"),
        ("# escape=x\nFROM alpine\n", "invalid escape token"),
    ],
)
def test_structural_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        run(text)


def test_read_dockerfile(tmp_path: Path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM alpine\n")
    assert read_dockerfile(path) == "FROM alpine\n"
    with pytest.raises(ConfigError, match="Dockerfile not found") as err:
        read_dockerfile(tmp_path / "missing")
    assert err.value.file == str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="cannot read Dockerfile"):
        read_dockerfile(tmp_path)


# --- the shell lexer on BuildKit's own test table (shell/envVarTest) -------------------------

_ENV = Env({"PWD": "/home", "SHELL": "bash", "NULL": ""})


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("abc\\tdef", "abctdef"),
        ('"abc\\tdef"', "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("hello\\", "hello"),
        ("hello\\\\", "hello\\"),
        ('"hel\'lo"', "hel'lo"),
        ("'hello\\'", "hello\\"),
        ("$.", "$."),
        ("he$1x", "hex"),
        ("he$.x", "he$.x"),
        ("he$pwd.", "he."),
        ("he$PWD", "he/home"),
        ("he\\$PWD", "he$PWD"),
        ("he\\\\$PWD", "he\\/home"),
        ('"he\\$PWD"', "he$PWD"),
        ("\\${}aaa", "${}aaa"),
        ("he${hi}xx", "hexx"),
        ("he${XXX:-000}xx", "he000xx"),
        ("he${PWD:-000}xx", "he/homexx"),
        ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
        ("he${PWD?}", "he/home"),
        ("he${NULL?}", "he"),
        ("he${PWD:+${SHELL}}xx", "hebashxx"),
        ("he${XXX:+000}xx", "hexx"),
        ("'he${XX}'", "he${XX}"),
        ("\"he'$PWD'\"", "he'/home'"),
        ("he${PWD+${PWD}:}xx", "he/home:xx"),
        ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
        ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
        ("안'녕'하세요", "안녕하세요"),
        ('"안녕\\"하세요"', '안녕"하세요'),
    ],
)
def test_lexer_matches_buildkit(word, expected):
    assert expand(word, _ENV).value == expected


@pytest.mark.parametrize(
    "word",
    ["he'llo", "he\\\\'llo", '"hello', '"hello\\"', "'hello", "${}", "he${.}", "he${XXX:YYY}",
     "he${XXX?}", "he${XXX:?}", "he${NULL:?}", "he${PWD", "he${PWD=000}xx", "'안녕\\'하세요'"],
)  # fmt: skip
def test_lexer_errors_match_buildkit(word):
    with pytest.raises(ShellSyntaxError):
        expand(word, _ENV)


def test_lexer_reports_unknowns_instead_of_guessing():
    env = Env({"KNOWN": "k", "LATER": None}, opaque=True)
    assert expand("$KNOWN", env).unknown == ()
    assert expand("$LATER-$IMAGE_ENV", env).unknown == ("LATER", "IMAGE_ENV")
    assert expand("${KNOWN:-$LATER}", env).unknown == ()  # unused default is not needed
    assert expand("${KNOWN:+$LATER}", env).unknown == ("LATER",)
