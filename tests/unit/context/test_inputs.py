"""Which context files a build reads, and how they are hashed (BuildKit/Docker semantics)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pathspec
import pytest

from prebuild.analysis.types import ContextSource
from prebuild.context.inputs import (
    IgnoreMatcher,
    InputFile,
    collect_context,
    collect_paths,
    collect_sources,
    load_dockerignore,
)
from prebuild.context.patterns import PatternMatcher, go_match, read_ignore_lines, split_wildcards
from prebuild.errors import ConfigError


def write(root: Path, rel: str, content: str | bytes = "x", mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if mode is not None:
        path.chmod(mode)
    return path


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    """repo/ctx: the build context one level below the repo root."""
    context = tmp_path / "repo" / "ctx"
    context.mkdir(parents=True)
    return context


def collect(context: Path, *sources: str | ContextSource, ignore: IgnoreMatcher | None = None):
    """{context-relative path: InputFile} for the given sources."""
    specs = [s if isinstance(s, ContextSource) else ContextSource(s, 1) for s in sources]
    files = collect_sources(
        context, specs, ignore=ignore or IgnoreMatcher(), repo_root=context.parent
    )
    prefix = context.name + "/"
    assert all(f.path.startswith(prefix) for f in files)
    return {f.path.removeprefix(prefix): f for f in files}


def ignoring(*patterns: str) -> IgnoreMatcher:
    return IgnoreMatcher([p for _, p in read_ignore_lines("\n".join(patterns))])


def sha(data: bytes | str) -> str:
    return "sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# --- what a file contributes -----------------------------------------------------------------


def test_input_file_is_repo_relative_with_content_digest(ctx: Path):
    write(ctx, "app/main.py", "print(1)\n")
    assert collect_sources(
        ctx, [ContextSource("app/main.py", 3)], ignore=IgnoreMatcher(), repo_root=ctx.parent
    ) == [InputFile("ctx/app/main.py", False, sha("print(1)\n"))]


def test_editing_an_unmatched_file_changes_nothing(ctx: Path):
    write(ctx, "app/main.py", "a")
    write(ctx, "README.md", "docs")
    before = collect(ctx, "app")
    write(ctx, "README.md", "changed docs")
    write(ctx, "other/new.txt", "new")
    assert collect(ctx, "app") == before
    write(ctx, "app/main.py", "b")
    assert collect(ctx, "app")["app/main.py"].digest == sha("b")


def test_executable_bit_changes_the_input_but_mtime_does_not(ctx: Path):
    path = write(ctx, "run.sh", "#!/bin/sh\n", mode=0o644)
    plain = collect(ctx, "run.sh")
    os.utime(path, (1_000_000, 1_000_000))
    assert collect(ctx, "run.sh") == plain
    path.chmod(0o600)  # other mode bits do not count either
    assert collect(ctx, "run.sh") == plain
    path.chmod(0o744)
    executable = collect(ctx, "run.sh")
    assert executable["run.sh"].executable is True
    assert executable != plain


def test_paths_are_independent_of_the_checkout_location(ctx: Path, tmp_path: Path):
    write(ctx, "src/a.txt", "a")
    write(ctx, "src/deep/b.txt", "b")
    (ctx / "src" / "link").symlink_to("a.txt")
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(ctx.parent, other, symlinks=True)
    here = collect_sources(
        ctx, [ContextSource("src", 1)], ignore=IgnoreMatcher(), repo_root=ctx.parent
    )
    there = collect_sources(
        other / "ctx", [ContextSource("src", 1)], ignore=IgnoreMatcher(), repo_root=other
    )
    assert here == there


def test_large_and_many_files_hash_like_hashlib(ctx: Path, monkeypatch):
    big = os.urandom(3 * (1 << 20) + 17)
    write(ctx, "big.bin", big)
    for i in range(40):
        write(ctx, f"many/{i:02}.txt", f"file {i}")
    parallel = collect(ctx, "")
    assert parallel["big.bin"].digest == sha(big)
    assert parallel["many/07.txt"].digest == sha("file 7")
    monkeypatch.setattr("prebuild.context.digests.PARALLEL_MIN_FILES", 10**9)
    assert collect(ctx, "") == parallel


def test_results_are_sorted_and_deduplicated(ctx: Path):
    for name in ("b.txt", "a.txt", "dir/c.txt"):
        write(ctx, name)
    files = collect_sources(
        ctx,
        [ContextSource("*.txt", 1), ContextSource("a.txt", 2), ContextSource("", 3)],
        ignore=IgnoreMatcher(),
        repo_root=ctx.parent,
    )
    assert [f.path for f in files] == ["ctx/a.txt", "ctx/b.txt", "ctx/dir/c.txt"]


# --- source patterns (Go filepath.Match) -----------------------------------------------------


def test_directory_source_includes_everything_below_it(ctx: Path):
    write(ctx, "src/a.py")
    write(ctx, "src/pkg/b.py")
    write(ctx, "src/pkg/deeper/c.py")
    write(ctx, "srcfile.py")
    (ctx / "src" / "empty").mkdir()
    got = collect(ctx, "src")
    assert sorted(got) == ["src/a.py", "src/empty", "src/pkg/b.py", "src/pkg/deeper/c.py"]
    assert got["src/empty"].digest == "dir"  # COPY recreates empty directories


def test_star_does_not_cross_directories(ctx: Path):
    for name in ("a.txt", "b.md", "sub/c.txt", "sub/deep/d.txt"):
        write(ctx, name)
    assert sorted(collect(ctx, "*.txt")) == ["a.txt"]
    assert sorted(collect(ctx, "*/*.txt")) == ["sub/c.txt"]
    # COPY has no `**`: Go reads it as two `*`, i.e. exactly one level
    assert sorted(collect(ctx, "**/*.txt")) == ["sub/c.txt"]


def test_glob_classes_question_mark_and_escapes(ctx: Path):
    for name in ("a1.ini", "b2.ini", "c3.ini", "ab.ini", "star*.txt", "starX.txt"):
        write(ctx, name)
    assert sorted(collect(ctx, "[ab]?.ini")) == ["a1.ini", "ab.ini", "b2.ini"]
    assert sorted(collect(ctx, "[^a-b]?.ini")) == ["c3.ini"]
    assert sorted(collect(ctx, "sta?\\*.txt")) == ["star*.txt"]
    # no unescaped wildcard: fsutil takes the path literally, backslash included
    assert sorted(collect(ctx, "star\\*.txt")) == []


def test_glob_matching_a_directory_takes_it_whole(ctx: Path):
    write(ctx, "cmd/api/main.go")
    write(ctx, "cmd/api/internal/x.go")
    write(ctx, "cmd/cli/main.go")
    write(ctx, "cmd/README")
    got = collect(ctx, "cmd/*")
    assert sorted(got) == [
        "cmd/README",
        "cmd/api/internal/x.go",
        "cmd/api/main.go",
        "cmd/cli/main.go",
    ]
    assert sorted(collect(ctx, "cmd/a*")) == ["cmd/api/internal/x.go", "cmd/api/main.go"]


def test_pattern_matching_nothing_records_nothing(ctx: Path):
    write(ctx, "a.txt")
    assert collect(ctx, "missing.txt", "nope/*.go", "a.txt/inside") == {}


def test_whole_context_source(ctx: Path):
    write(ctx, "a")
    write(ctx, "d/b")
    assert sorted(collect(ctx, "")) == ["a", "d/b"]


# --- .dockerignore (moby/patternmatcher) -----------------------------------------------------


def test_dockerignored_files_are_not_inputs(ctx: Path):
    write(ctx, "src/a.py")
    write(ctx, "src/a.pyc")
    write(ctx, "src/__pycache__/a.cpython-311.pyc")
    write(ctx, "secret.env")
    ignore = ignoring("**/*.pyc", "**/__pycache__", "secret.env")
    assert sorted(collect(ctx, "src", "secret.env", ignore=ignore)) == ["src/a.py"]


def test_negation_re_includes_and_last_match_wins(ctx: Path):
    for name in ("docs/a.md", "docs/keep.md", "docs/img/x.png", "notes.md"):
        write(ctx, name)
    got = collect(ctx, "", ignore=ignoring("docs", "!docs/keep.md", "*.md", "!notes.md"))
    assert sorted(got) == ["docs/keep.md", "notes.md"]
    got = collect(ctx, "", ignore=ignoring("!docs/keep.md", "docs"))  # order matters
    assert sorted(got) == ["notes.md"]


def test_excluded_directory_with_re_included_child(ctx: Path):
    write(ctx, "build/out.o")
    write(ctx, "build/keep/version.txt")
    ignore = ignoring("build", "!build/keep")
    assert sorted(collect(ctx, "build", ignore=ignore)) == ["build/keep/version.txt"]
    assert sorted(collect(ctx, "build/*", ignore=ignore)) == ["build/keep/version.txt"]


def test_dockerignore_patterns_are_anchored_unlike_gitignore(ctx: Path):
    write(ctx, "top.md")
    write(ctx, "docs/nested.md")
    got = collect(ctx, "", ignore=ignoring("*.md"))
    assert sorted(got) == ["docs/nested.md"]
    # pathspec's gitwildmatch (gitignore) would drop docs/nested.md too: not what Docker does
    assert pathspec.PathSpec.from_lines("gitignore", ["*.md"]).match_file("docs/nested.md")


def test_leading_slash_dot_slash_and_clean_are_normalized(ctx: Path):
    for name in ("a/x", "b/y", "c/z", "d/w"):
        write(ctx, name)
    got = collect(ctx, "", ignore=ignoring("/a", "./b/", "c/../c", "  # not a comment"))
    assert sorted(got) == ["d/w"]
    assert read_ignore_lines("# comment\n/a\n! ./b/\n\n  c  \r\n") == [
        (2, "a"),
        (3, "!b"),
        (5, "c"),
    ]


def test_double_star_spans_directories(ctx: Path):
    for name in ("x.log", "a/x.log", "a/b/c/x.log", "a/b/keep.txt"):
        write(ctx, name)
    got = collect(ctx, "", ignore=ignoring("**/*.log"))
    assert sorted(got) == ["a/b/c", "a/b/keep.txt"]  # a/b/c is still sent, empty
    assert got["a/b/c"].digest == "dir"
    # `a/**` matches what is below a/, not a/ itself: an empty a/ is still sent
    assert sorted(collect(ctx, "", ignore=ignoring("a/**"))) == ["a", "x.log"]


def test_ambiguous_negation_order_keeps_the_file(ctx: Path):
    # MatchesOrParentMatches excludes a/f here, BuildKit's walker keeps it: keep it.
    write(ctx, "a/f")
    write(ctx, "a/g")
    assert sorted(collect(ctx, "", ignore=ignoring("a", "!a/f", "a"))) == ["a/f"]


def test_dockerfile_specific_ignore_wins(ctx: Path, tmp_path: Path):
    write(ctx, "a.txt")
    write(ctx, "b.txt")
    write(ctx, ".dockerignore", "a.txt\n")
    dockerfile = write(tmp_path / "repo" / "docker", "app.Dockerfile", "FROM scratch\n")
    assert load_dockerignore(ctx, dockerfile).ignored("a.txt")
    write(dockerfile.parent, "app.Dockerfile.dockerignore", "b.txt\n")
    ignore = load_dockerignore(ctx, dockerfile)
    assert ignore.source == dockerfile.parent / "app.Dockerfile.dockerignore"
    assert not ignore.ignored("a.txt") and ignore.ignored("b.txt")


def test_no_dockerignore_ignores_nothing(ctx: Path):
    ignore = load_dockerignore(ctx, ctx / "Dockerfile")
    assert ignore.patterns == () and not ignore.ignored("anything")


def test_bad_dockerignore_pattern_is_located(ctx: Path):
    write(ctx, ".dockerignore", "ok\n\nbad[\n")
    with pytest.raises(ConfigError) as err:
        load_dockerignore(ctx, ctx / "Dockerfile")
    assert (err.value.file, err.value.line) == (str(ctx / ".dockerignore"), 3)


# --- COPY --exclude and --parents ------------------------------------------------------------


def test_copy_exclude_subtracts_relative_to_the_source(ctx: Path):
    for name in ("docs/a.md", "docs/b.txt", "docs/sub/c.md", "docs/tmp/x", "top.md"):
        write(ctx, name)
    got = collect(ctx, ContextSource("docs", 1, excludes=("*.md", "tmp")))
    assert sorted(got) == ["docs/b.txt", "docs/sub/c.md"]
    got = collect(ctx, ContextSource("docs", 1, excludes=("**/*.md", "!sub/c.md")))
    assert sorted(got) == ["docs/b.txt", "docs/sub/c.md", "docs/tmp/x"]


def test_copy_exclude_never_drops_a_directly_named_file(ctx: Path):
    write(ctx, "a.md")
    assert sorted(collect(ctx, ContextSource("a.md", 1, excludes=("*.md",)))) == ["a.md"]


def test_copy_parents_allows_double_star_and_pivot(ctx: Path):
    for name in ("apps/x/go.mod", "apps/x/y/go.mod", "apps/x/main.go", "go.mod", "lib/go.mod"):
        write(ctx, name)
    got = collect(ctx, ContextSource("apps/**/go.mod", 1, parents=True, pivot="apps"))
    assert sorted(got) == ["apps/x/go.mod", "apps/x/y/go.mod"]
    got = collect(ctx, ContextSource("**/go.mod", 1, parents=True, excludes=("lib",)))
    assert sorted(got) == ["apps/x/go.mod", "apps/x/y/go.mod", "go.mod"]


# --- symlinks --------------------------------------------------------------------------------


def test_symlink_inside_a_copied_directory_is_kept_as_a_link(ctx: Path):
    write(ctx, "conf/real.toml", "real")
    (ctx / "conf" / "link.toml").symlink_to("real.toml")
    got = collect(ctx, "conf")
    assert got["conf/link.toml"] == InputFile("ctx/conf/link.toml", False, "symlink:real.toml")


def test_symlink_named_as_source_is_followed_inside_the_context(ctx: Path):
    write(ctx, "real/data.txt", "data")
    (ctx / "alias").symlink_to("real")
    got = collect(ctx, "alias")
    assert got["real/data.txt"].digest == sha("data")
    write(ctx, "real/data.txt", "changed")
    assert collect(ctx, "alias")["real/data.txt"].digest == sha("changed")


def test_symlinks_never_lead_out_of_the_context(ctx: Path, tmp_path: Path):
    secret = write(tmp_path, "outside/secret.txt", "top secret")
    (ctx / "abs").symlink_to(secret)
    (ctx / "rel").symlink_to("../../outside")
    write(ctx, "inside.txt")
    got = collect(ctx, "abs", "rel", "rel/secret.txt", "")
    assert sha("top secret") not in {f.digest for f in got.values()}
    assert got["abs"].digest == f"symlink:{secret}"


def test_special_files_are_recorded_not_read(ctx: Path):
    os.mkfifo(ctx / "pipe")
    assert collect(ctx, "")["pipe"].digest == "special:fifo"


# --- whole context and extra inputs ----------------------------------------------------------


def test_collect_context_is_everything_not_ignored(ctx: Path):
    write(ctx, "Dockerfile", "FROM scratch\n")
    write(ctx, ".dockerignore", "*.log\nnode_modules\n")
    write(ctx, "a.log")
    write(ctx, "src/app.js")
    write(ctx, "node_modules/x/index.js")
    (ctx / "empty").mkdir()
    ignore = load_dockerignore(ctx, ctx / "Dockerfile")
    files = collect_context(ctx, ignore=ignore, repo_root=ctx.parent)
    assert [f.path for f in files] == [
        "ctx/.dockerignore",
        "ctx/Dockerfile",
        "ctx/empty",
        "ctx/src/app.js",
    ]
    whole = collect_sources(ctx, [ContextSource("", 1)], ignore=ignore, repo_root=ctx.parent)
    assert whole == files


def test_collect_paths_files_dirs_and_globs(tmp_path: Path):
    repo = tmp_path / "repo"
    for name in ("tool-versions", "scripts/a.sh", "scripts/ci/b.sh", "scripts/notes.txt"):
        write(repo, name, name)
    files = collect_paths(repo, ["tool-versions", "scripts/**/*.sh", "missing/*.x", "./nope"])
    assert [f.path for f in files] == ["scripts/a.sh", "scripts/ci/b.sh", "tool-versions"]
    assert files[-1].digest == sha("tool-versions")
    assert [f.path for f in collect_paths(repo, ["scripts"])] == [
        "scripts/a.sh",
        "scripts/ci/b.sh",
        "scripts/notes.txt",
    ]


def test_collect_paths_follows_links_inside_the_repo_only(tmp_path: Path):
    repo = tmp_path / "repo"
    write(repo, "lib/common.sh", "common")
    write(tmp_path, "outside.sh", "outside")
    (repo / "scripts").mkdir()
    (repo / "scripts" / "common.sh").symlink_to("../lib/common.sh")
    (repo / "scripts" / "out.sh").symlink_to("../../outside.sh")
    got = {f.path: f.digest for f in collect_paths(repo, ["scripts"])}
    assert got == {
        "lib/common.sh": sha("common"),
        "scripts/common.sh": "symlink:../lib/common.sh",
        "scripts/out.sh": "symlink:../../outside.sh",
    }


@pytest.mark.parametrize("pattern", ["../other", "/etc/passwd"])
def test_collect_paths_rejects_paths_outside_the_repo(tmp_path: Path, pattern: str):
    with pytest.raises(ConfigError, match="inside the repository"):
        collect_paths(tmp_path, [pattern])


def test_unreadable_file_is_a_config_error(ctx: Path, monkeypatch):
    write(ctx, "locked", "x")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("prebuild.context.digests.open", denied, raising=False)
    with pytest.raises(ConfigError, match="cannot read input file: Permission denied") as err:
        collect(ctx, "locked")
    assert err.value.file == str(ctx / "locked")


def test_collect_paths_records_a_named_symlink_and_its_target(tmp_path: Path):
    repo = tmp_path / "repo"
    write(repo, "real.cfg", "cfg")
    (repo / "alias.cfg").symlink_to("real.cfg")
    (repo / "etc-link").symlink_to("/etc/hostname")
    got = {f.path: f.digest for f in collect_paths(repo, ["alias.cfg", "etc-link"])}
    assert got == {
        "alias.cfg": "symlink:real.cfg",
        "etc-link": "symlink:/etc/hostname",
        "real.cfg": sha("cfg"),
    }


# --- the matchers themselves -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*.go", "main.go", True),
        ("*.go", "cmd/main.go", False),
        ("?", "/", False),
        ("[^a]", "/", True),  # Go classes may match the separator
        ("[a-c]x", "bx", True),
        ("\\[x", "[x", True),
        ("a[", "a[", False),  # malformed: matches nothing, as fsutil ignores the error
        ("a\\", "a\\", False),
    ],
)
def test_go_match(pattern, name, expected):
    assert go_match(pattern, name) is expected


def test_split_wildcards():
    assert split_wildcards("a/b/*.go") == ("a/b", "*.go")
    assert split_wildcards("a/b") == ("a/b", "")
    assert split_wildcards("a/\\*/c?") == ("a/\\*", "c?")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("foo", "foo", True),
        ("foo", "foo/bar/baz", True),  # a matched directory matches everything below
        ("foo", "x/foo", False),
        ("*", "foo/bar", True),
        ("foo/**", "foo", False),
        ("foo/**", "foo/a/b", True),
        ("**/foo", "foo", True),
        ("**/foo", "a/b/foo/c", True),
        ("**foo", "barfoo", True),  # patternmatcher's suffix match
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("*.go", "a/b.go", False),
        ("[ab].txt", "b.txt", True),
        ("a.b", "axb", False),
    ],
)
def test_pattern_matcher(pattern, path, expected):
    assert PatternMatcher([pattern]).matches(path) is expected


def test_pattern_matcher_prunes_only_when_nothing_below_can_be_re_included():
    matcher = PatternMatcher(["build", "!build/keep/*.txt", "!**/important"])
    assert matcher.may_reinclude_below("build")
    assert PatternMatcher(["build", "!other/x"]).may_reinclude_below("build") is False
    assert PatternMatcher(["build", "!b*/x"]).may_reinclude_below("build") is True
