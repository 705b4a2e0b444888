"""Which context files a Dockerfile's sources read, hashed for the content key.

Selection mirrors what BuildKit copies: the context minus `.dockerignore` (re-includes honoured),
COPY/ADD sources matched with Go `filepath.Match` below their literal prefix, a matched
directory taken whole, a matched symlink followed *inside* the context (BuildKit resolves links
as if the context were `/`), symlinks below a copied directory kept as links, and empty
directories kept (COPY recreates them). When unsure, this module includes more rather than
less: an extra file only costs a rebuild, a missing one serves a stale image.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prebuild.analysis.types import ContextSource
from prebuild.context.digests import digest_files
from prebuild.context.patterns import (
    PatternMatcher,
    go_clean,
    go_glob_regex,
    has_wildcards,
    read_ignore_lines,
    split_wildcards,
)
from prebuild.errors import ConfigError
from prebuild.pathnames import real_directory

__all__ = [
    "IgnoreMatcher",
    "InputFile",
    "collect_context",
    "collect_paths",
    "collect_sources",
    "load_dockerignore",
]

_MAX_LINKS = 255  # continuity's fs.RootPath limit


@dataclass(frozen=True)
class InputFile:
    """One input as the key sees it; nothing about the checkout (mtime, owner, location)."""

    path: str  # posix, relative to the repo root
    executable: bool  # any x bit (the only mode bit git keeps)
    digest: str  # "sha256:<hex>", "symlink:<target>", "dir" (empty dir) or "special:<kind>"


class IgnoreMatcher:
    """The `.dockerignore` in effect for one build; empty when there is none."""

    def __init__(self, patterns: Sequence[str] = (), *, source: Path | None = None) -> None:
        self.patterns = tuple(patterns)
        self.source = source
        self._matcher = PatternMatcher(self.patterns)

    def ignored(self, path: str) -> bool:
        """Is the context-relative posix `path` left out of what the client sends?"""
        return bool(self._matcher) and self._matcher.matches(path)

    def may_reinclude_below(self, directory: str) -> bool:
        return self._matcher.may_reinclude_below(directory)


def load_dockerignore(context: Path, dockerfile: Path) -> IgnoreMatcher:
    """`<Dockerfile>.dockerignore` next to the Dockerfile wins over `<context>/.dockerignore`."""
    own = dockerfile.with_name(dockerfile.name + ".dockerignore")
    for candidate in (own, context / ".dockerignore"):
        try:
            text = candidate.read_bytes().decode("utf-8", errors="surrogateescape")
        except FileNotFoundError:
            continue
        except OSError as exc:
            message = f"cannot read ignore file: {exc.strerror}"
            raise ConfigError(message, file=str(candidate)) from None
        lines = read_ignore_lines(text)
        for number, pattern in lines:
            try:
                PatternMatcher([pattern])
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(candidate), line=number) from None
        return IgnoreMatcher([p for _, p in lines], source=candidate)
    return IgnoreMatcher()


def collect_sources(
    context: Path, sources: Sequence[ContextSource], *, ignore: IgnoreMatcher, repo_root: Path
) -> list[InputFile]:
    """Hash exactly the context files the given COPY/ADD/bind-mount sources can read."""
    tree = _Tree(context, ignore)
    for source in sources:
        if source.parents:
            tree.add_parents(source)
        else:
            tree.add_glob(source.pattern, _excluder(source.excludes))
    return _hash(tree, repo_root)


def collect_context(context: Path, *, ignore: IgnoreMatcher, repo_root: Path) -> list[InputFile]:
    """Hash the whole context minus `.dockerignore` (the fallback when analysis is unsound)."""
    tree = _Tree(context, ignore)
    tree.emit("", None)
    return _hash(tree, repo_root)


def collect_paths(repo_root: Path, patterns: Sequence[str]) -> list[InputFile]:
    """Hash the config's extra inputs: repo-relative files, directories or globs (`**` allowed).

    Symlinks are recorded as links and, when they point inside the repo, their targets are
    hashed too (whatever reads these paths outside BuildKit follows links).
    """
    tree = _Tree(repo_root, None, follow_links=True)
    for raw in patterns:
        pattern = go_clean(raw.strip() or ".")
        if pattern.startswith("/") or pattern == ".." or pattern.startswith("../"):
            raise ConfigError(f"extra input {raw!r} must be a path inside the repository")
        pattern = "" if pattern == "." else pattern
        if not any(has_wildcards(part) for part in pattern.split("/")):
            tree.emit(tree.resolve(pattern, follow_last=False), None)
            continue
        try:
            matcher = PatternMatcher([pattern])
        except ValueError as exc:
            raise ConfigError(f"extra input {raw!r}: {exc}") from None
        tree.add_matching(matcher, split_wildcards(pattern)[0], "", None)
    return _hash(tree, repo_root)


def _excluder(excludes: Sequence[str]) -> PatternMatcher | None:
    """COPY --exclude patterns; None (exclude nothing) if they cannot be compiled."""
    try:
        matcher = PatternMatcher(excludes)
    except ValueError:
        return None
    return matcher or None


class _Tree:
    """A directory as BuildKit sees it: ignored entries absent, links resolved within the root."""

    def __init__(self, root: Path, ignore: IgnoreMatcher | None, *, follow_links: bool = False):
        self.root = os.path.abspath(root)
        self.ignore = ignore if ignore is not None and ignore.patterns else None
        self.follow_links = follow_links  # extra inputs: whatever reads them follows links
        self.scoped = not follow_links  # BuildKit resolves links as if the context were `/`
        self.entries: dict[str, tuple[str, os.stat_result]] = {}
        self._present_dirs: dict[str, bool] = {}
        self._followed: set[str] = set()

    def abspath(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.abspath(rel))
        except OSError:
            return None

    def present(self, rel: str, st: os.stat_result) -> bool:
        """Would the entry exist in the transferred context?"""
        if not rel or self.ignore is None or not self.ignore.ignored(rel):
            return True
        if not stat.S_ISDIR(st.st_mode) or not self.ignore.may_reinclude_below(rel):
            return False
        if rel not in self._present_dirs:  # kept only as the parent of a re-included entry
            self._present_dirs[rel] = any(True for _ in self.children(rel))
        return self._present_dirs[rel]

    def children(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        """(child rel path, lstat) of present children, sorted by name."""
        try:
            with os.scandir(self.abspath(rel)) as it:
                names = sorted(entry.name for entry in it)
        except OSError:
            return
        for name in names:
            child = f"{rel}/{name}" if rel else name
            st = self.lstat(child)
            if st is not None and self.present(child, st):
                yield child, st

    def resolve(self, rel: str, *, follow_last: bool = True) -> str | None:
        """fs.RootPath: follow symlinks as if `root` were `/` (when `scoped`); None if they
        loop, or escape the root when not `scoped`."""
        scoped = self.scoped
        parts = [p for p in rel.split("/") if p]
        resolved: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if not resolved and not scoped:
                    return None
                if resolved:
                    resolved.pop()
                continue
            candidate = [*resolved, part]
            if not parts and not follow_last:
                resolved = candidate
                break
            st = self.lstat("/".join(candidate))
            if st is None or not stat.S_ISLNK(st.st_mode):
                resolved = candidate
                continue
            links += 1
            if links > _MAX_LINKS:
                return None
            target = os.readlink(self.abspath("/".join(candidate)))
            if target.startswith("/"):
                if not scoped:
                    return None
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
        return "/".join(resolved)

    def add(self, rel: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            self.entries[rel] = ("file", st)
        elif stat.S_ISLNK(mode):
            self.entries[rel] = ("link", st)
            if self.follow_links and rel not in self._followed:
                self._followed.add(rel)
                self.emit(self.resolve(rel), None)
        elif stat.S_ISDIR(mode):
            if rel:
                self.entries[rel] = ("dir", st)
        else:
            self.entries[rel] = ("special", st)

    def emit(self, rel: str | None, excludes: PatternMatcher | None) -> None:
        """Copy `rel` the way `COPY rel` does: a file, or a directory with everything below it;
        `excludes` apply to paths relative to `rel`."""
        if rel is None:
            return
        st = self.lstat(rel)
        if st is None or not self.present(rel, st):
            return
        if not stat.S_ISDIR(st.st_mode) or not self._emit_dir(rel, rel, excludes):
            self.add(rel, st)

    def _emit_dir(self, top: str, rel: str, excludes: PatternMatcher | None) -> bool:
        emitted = False
        for child, st in self.children(rel):
            is_dir = stat.S_ISDIR(st.st_mode)
            sub = child[len(top) :].lstrip("/")
            if excludes is not None and excludes.matches(sub):
                if is_dir and excludes.may_reinclude_below(sub):
                    emitted = self._emit_dir(top, child, excludes) or emitted
                continue
            if is_dir and self._emit_dir(top, child, excludes):
                emitted = True
                continue
            self.add(child, st)
            emitted = True
        return emitted

    def add_glob(self, pattern: str, excludes: PatternMatcher | None) -> None:
        """One COPY/ADD source: fsutil's ResolveWildcards, then copy each match."""
        literal, rest = split_wildcards(pattern)
        base = self.resolve(literal)
        if not rest:
            self.emit(base, excludes)
            return
        regex = go_glob_regex(rest)
        st = self.lstat(base) if base is not None else None
        if base is None or regex is None or st is None or not stat.S_ISDIR(st.st_mode):
            return
        if not self.present(base, st):
            return
        max_depth = rest.count("/") + rest.count("[")  # a Go class may match '/'
        stack = [base]
        while stack:
            directory = stack.pop()
            for child, child_st in self.children(directory):
                sub = child[len(base) :].lstrip("/")
                if regex.fullmatch(sub):
                    self.emit(self.resolve(child), excludes)
                elif stat.S_ISDIR(child_st.st_mode) and sub.count("/") < max_depth:
                    stack.append(child)

    def add_parents(self, source: ContextSource) -> None:
        """COPY --parents: the pattern is a patternmatcher include relative to the pivot."""
        pivot = source.pivot
        relative = source.pattern[len(pivot) :].lstrip("/") if pivot else source.pattern
        try:
            matcher = PatternMatcher([relative or "**"])
        except ValueError:
            matcher = None
        if matcher is None or any(has_wildcards(p) for p in pivot.split("/")):
            self.emit(self.resolve(split_wildcards(pivot or source.pattern)[0]), None)
            return
        excludes = _excluder(source.excludes)
        self.add_matching(matcher, split_wildcards(relative)[0], pivot, excludes)

    def add_matching(
        self, matcher: PatternMatcher, literal: str, base: str, excludes: PatternMatcher | None
    ) -> None:
        """Everything below `base/literal` whose path relative to `base` `matcher` matches
        (a matched directory brings everything below it); `excludes` are relative to `base`."""
        start = self.resolve(posixpath.join(base, literal) if base else literal)
        st = self.lstat(start) if start is not None else None
        if start is None or st is None or not self.present(start, st):
            return
        matched = bool(literal) and matcher.matches(literal)
        if matched and excludes is not None and excludes.matches(literal):
            return
        if not stat.S_ISDIR(st.st_mode):
            if matched:
                self.add(start, st)
        elif not self._walk_matching(start, literal, matcher, excludes) and matched:
            self.add(start, st)

    def _walk_matching(
        self, real: str, shown: str, matcher: PatternMatcher, excludes: PatternMatcher | None
    ) -> bool:
        emitted = False
        for child, st in self.children(real):
            name = child.rsplit("/", 1)[-1]
            sub = f"{shown}/{name}" if shown else name
            is_dir = stat.S_ISDIR(st.st_mode)
            if excludes is not None and excludes.matches(sub):
                if is_dir and excludes.may_reinclude_below(sub):
                    emitted = self._walk_matching(child, sub, matcher, excludes) or emitted
                continue
            hit = matcher.matches(sub)
            descend = is_dir and (hit or matcher.may_match_below(sub))
            if descend and self._walk_matching(child, sub, matcher, excludes):
                emitted = True
                continue
            if hit:
                self.add(child, st)
                emitted = True
        return emitted


def _hash(tree: _Tree, repo_root: Path) -> list[InputFile]:
    prefix = os.path.relpath(real_directory(str(tree.root)), real_directory(str(repo_root)))
    prefix = "" if prefix == "." else prefix.replace(os.sep, "/")
    items = sorted(tree.entries.items())
    files = [(rel, st) for rel, (kind, st) in items if kind == "file"]
    found = digest_files([(tree.abspath(rel), st.st_size) for rel, st in files])
    digests = dict(zip((rel for rel, _ in files), found, strict=True))
    out = []
    for rel, (kind, st) in items:
        path = f"{prefix}/{rel}" if prefix else rel
        if kind == "file":
            out.append(InputFile(path, bool(st.st_mode & 0o111), digests[rel]))
        elif kind == "link":
            out.append(InputFile(path, False, "symlink:" + os.readlink(tree.abspath(rel))))
        elif kind == "dir":
            out.append(InputFile(path, False, "dir"))
        else:
            out.append(InputFile(path, False, "special:" + _special_kind(st.st_mode)))
    out.sort(key=lambda f: f.path)
    return out


def _special_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char")):
        if test(mode):
            return name
    return "block" if stat.S_ISBLK(mode) else "other"
