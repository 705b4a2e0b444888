"""Path matching exactly as BuildKit does it, so the key sees the files the build sees.

Two dialects are needed and neither is gitignore (which `pathspec` implements):

* COPY/ADD sources use Go's `filepath.Match` against the path relative to the source's literal
  prefix (`*` and `?` never cross `/`, classes are `[^...]`, no `**`).
* `.dockerignore` and `COPY --exclude` / `--parents` use moby/patternmatcher: patterns are
  anchored at the root (`*.md` does NOT match `docs/a.md`, unlike gitignore), `**` spans
  directories, `!` re-includes, the last matching pattern wins, and a pattern matching a
  directory matches everything below it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from functools import lru_cache

_SHOULD_ESCAPE = frozenset(".+()|{}$")


def go_clean(path: str) -> str:
    """Go's `path.Clean` (posixpath.normpath keeps a leading '//', Go does not)."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def has_wildcards(component: str) -> bool:
    """fsutil's containsWildcards: `*`, `?` or `[` not preceded by a backslash escape."""
    i = 0
    while i < len(component):
        ch = component[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "*?[":
            return True
        i += 1
    return False


def split_wildcards(path: str) -> tuple[str, str]:
    """fsutil's splitWildcards: (literal directory prefix, rest starting at the first glob)."""
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if has_wildcards(part):
            return "/".join(parts[:i]), "/".join(parts[i:])
    return "/".join(parts), ""


@lru_cache(maxsize=1024)
def go_glob_regex(pattern: str) -> re.Pattern[str] | None:
    """Translate a Go `filepath.Match` pattern; None for a malformed one (which matches nothing,
    as fsutil ignores the error)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "\\":
            if i + 1 >= n:
                return None
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif ch == "[":
            parsed = _go_class(pattern, i + 1)
            if parsed is None:
                return None
            regex, i = parsed
            out.append(regex)
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _go_class(pattern: str, i: int) -> tuple[str, int] | None:
    """Parse a Go character class starting after '['; (regex, index after ']') or None."""
    n = len(pattern)
    negated = i < n and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if i < n and pattern[i] == "]" and ranges:
            i += 1
            break
        lo, i = _go_esc(pattern, i)
        if lo is None:
            return None
        hi = lo
        if pattern[i] == "-":
            upper, i = _go_esc(pattern, i + 1)
            if upper is None:
                return None
            hi = upper
        ranges.append((lo, hi))
    body = "".join(
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
        for lo, hi in ranges
        if lo <= hi
    )
    if not body:  # only empty ranges: Go matches nothing (or anything, when negated)
        return ("[\\s\\S]" if negated else "(?!)"), i
    return f"[{'^' if negated else ''}{body}]", i


def _go_esc(pattern: str, i: int) -> tuple[str | None, int]:
    """Go's getEsc: one possibly escaped class character; None for ErrBadPattern."""
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            return None, i
    ch = pattern[i]
    i += 1
    if i >= n:  # a class must be closed
        return None, i
    return ch, i


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match(pattern, name) on '/' paths; a malformed pattern matches nothing."""
    regex = go_glob_regex(pattern)
    return bool(regex is not None and regex.fullmatch(name))


class _Pattern:
    """One moby/patternmatcher pattern, compiled the way `Pattern.compile` does it."""

    def __init__(self, text: str) -> None:
        self.exclusion = text.startswith("!")
        self.text = text[1:] if self.exclusion else text
        self.kind, self.regex = _compile(self.text)

    def match(self, path: str) -> bool:
        text = self.text
        if self.kind == "exact":
            return path == text
        if self.kind == "prefix":
            return path.startswith(text[:-2])
        if self.kind == "suffix":
            suffix = text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        return bool(self.regex is not None and self.regex.fullmatch(path))

    def may_match_below(self, directory: str) -> bool:
        """False only if no path strictly below `directory` can match (used to prune walks)."""
        text = self.text
        if self.kind == "suffix" or "**" in text or "[" in text or "\\" in text:
            return True
        if self.kind == "exact":
            return text.startswith(directory + "/")
        if self.kind == "prefix":
            stem = text[:-2]
            return stem.startswith(directory + "/") or (directory + "/").startswith(stem)
        pattern_parts = text.split("/")
        dir_parts = directory.split("/")
        if len(pattern_parts) <= len(dir_parts):
            return False
        return all(_Pattern(p).match(d) for p, d in zip(pattern_parts, dir_parts, strict=False))


def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """patternmatcher's compile(): the match type and, for 'regexp', the regex."""
    reg = ["^"]
    kind = "exact"
    i, n = 0, len(pattern)
    step = 0
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg.append(".*")
                        kind = "regexp"
                else:
                    reg.append("(.*/)?")
                    kind = "regexp"
                if step == 0:
                    kind = "suffix"
            else:
                reg.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            reg.append("[^/]")
            kind = "regexp"
        elif ch in _SHOULD_ESCAPE:
            reg.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                reg.append("\\" + pattern[i])
                i += 1
                kind = "regexp"
            else:
                reg.append("\\")
        elif ch in "[]":
            reg.append(ch)
            kind = "regexp"
        else:
            reg.append(ch)
        step += 1
    if kind != "regexp":
        return kind, None
    reg.append("$")
    try:
        return kind, re.compile("".join(reg), re.DOTALL)
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None


class PatternMatcher:
    """moby/patternmatcher with the semantics of BuildKit's context walker.

    `matches(path)` is True only when both `MatchesOrParentMatches` and the walker's
    `MatchesUsingParentResults` say so: the two differ in corner cases of `!` ordering, and
    treating a file as excluded when either keeps it could drop a real input (a false hit).
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = go_clean(text)
            if text == "!":
                raise ValueError('illegal exclusion pattern: "!"')
            pattern = _Pattern(text)
            if go_glob_regex(pattern.text) is None:  # New() validates with filepath.Match
                raise ValueError(f"syntax error in pattern {raw!r}")
            self.patterns.append(pattern)
        self._walker_info: dict[str, tuple[bool, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        """Is the context-relative posix `path` (file or directory) matched?"""
        if not self.patterns or path in ("", "."):
            return False
        return self._or_parent(path) and self._walker(path)[0]

    def may_match_below(self, directory: str) -> bool:
        """Could an inclusion pattern match something strictly below `directory`?"""
        return any(not p.exclusion and p.may_match_below(directory) for p in self.patterns)

    def may_reinclude_below(self, directory: str) -> bool:
        """Could a `!` pattern re-include something strictly below an excluded `directory`?"""
        return any(p.exclusion and p.may_match_below(directory) for p in self.patterns)

    def _or_parent(self, path: str) -> bool:
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            if pattern.match(path) or any(pattern.match(p) for p in prefixes):
                matched = not pattern.exclusion
        return matched

    def _walker(self, path: str) -> tuple[bool, tuple[bool, ...]]:
        parent = posixpath.dirname(path)
        parent_info: tuple[bool, ...] = ()
        if parent:
            parent_info = self._walker_info.get(parent) or self._walker(parent)[1]
        matched = False
        info = []
        for i, pattern in enumerate(self.patterns):
            match = bool(parent_info) and parent_info[i]
            if not match:
                if pattern.exclusion != matched:
                    info.append(False)
                    continue
                match = pattern.match(path)
                if not match and not parent_info and parent:
                    parts = parent.split("/")
                    match = any(pattern.match("/".join(parts[: j + 1])) for j in range(len(parts)))
            info.append(match)
            if match:
                matched = not pattern.exclusion
        result = tuple(info)
        self._walker_info[path] = result
        return matched, result


def read_ignore_lines(text: str) -> list[tuple[int, str]]:
    """moby/patternmatcher/ignorefile.ReadAll: (line number, normalized pattern) pairs."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if number == 1:
            line = line.removeprefix("\ufeff")
        line = line.removesuffix("\r")
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append((number, "!" + pattern if invert else pattern))
    return out
