"""BuildKit's Dockerfile word expansion, for static analysis.

A port of `ProcessWord` from moby/buildkit `frontend/dockerfile/shell/lex.go`: quote removal,
escapes, `$VAR`, `${VAR}`, and the `-`, `+`, `?` modifiers with or without `:`. The content key
must never be computed from a guessed path, so a variable whose value the analysis cannot know
(a platform ARG not passed as a build arg, or a name a base image's ENV may define) is reported
in `Expansion.unknown` instead of being expanded to something plausible. The pattern modifiers
(`#`, `%`, `/`) depend on the frontend version and are reported the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Env", "Expansion", "ShellSyntaxError", "describe_unknown", "expand"]

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ShellSyntaxError(ValueError):
    """The word is malformed in a way BuildKit rejects too (the build would fail)."""


class Env:
    """Variables visible to one expansion.

    A value of None means "set, but not known before the build". `opaque` means names absent
    from the mapping may still be set (the stage's base image ENV is not visible to us).
    """

    def __init__(
        self,
        values: Mapping[str, str | None] | None = None,
        *,
        opaque: bool = False,
        why_unknown: Mapping[str, str] | None = None,
    ) -> None:
        self._values: dict[str, str | None] = dict(values or {})
        self._why: dict[str, str] = dict(why_unknown or {})
        self.opaque = opaque
        self.poisoned: str | None = None  # set when an ENV key itself could not be expanded

    def copy(self) -> Env:
        new = Env(self._values, opaque=self.opaque, why_unknown=self._why)
        new.poisoned = self.poisoned
        return new

    def set(self, name: str, value: str | None, why: str = "") -> None:
        self._values[name] = value
        if value is None:
            self._why[name] = why or "its value is derived from values unknown before the build"
        else:
            self._why.pop(name, None)

    def poison(self, why: str) -> None:
        """Every later lookup is unknown (an ENV instruction set a name we could not compute)."""
        self.poisoned = why

    def get(self, name: str) -> tuple[str, bool] | None:
        """(value, is_set), or None when unknown."""
        if self.poisoned is not None:
            return None
        if name in self._values:
            value = self._values[name]
            return None if value is None else (value, True)
        return None if self.opaque else ("", False)

    def why(self, name: str) -> str:
        """Human explanation of why `name` is unknown (for `prebuild explain`)."""
        if self.poisoned is not None:
            return self.poisoned
        if name in self._why:
            return self._why[name]
        return "it is not set in the Dockerfile, so the base image's ENV may define it"

    def known(self) -> dict[str, str]:
        return {k: v for k, v in self._values.items() if v is not None}


@dataclass(frozen=True)
class Expansion:
    """Result of expanding one word; `value` is meaningful only when `unknown` is empty."""

    value: str
    unknown: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return not self.unknown


def expand(word: str, env: Env, *, escape: str = "\\") -> Expansion:
    """Expand `word` exactly like BuildKit's `ProcessWord` (no word splitting)."""
    lexer = _Lexer(word, env, escape)
    value = lexer.process_stop_on(None)
    return Expansion(value, tuple(dict.fromkeys(lexer.unknown)))


def describe_unknown(names: Iterable[str], env: Env) -> str:
    """'$A: why; ${B%...}: why' for reasons and notes."""
    parts = []
    for name in names:
        if name.startswith("${"):
            parts.append(f"{name}: this expansion form is not analysed")
        else:
            parts.append(f"${name}: {env.why(name)}")
    return "; ".join(parts)


class _Lexer:
    """State of one ProcessWord call; method names follow lex.go so the two can be compared."""

    def __init__(self, word: str, env: Env, escape: str) -> None:
        self.s = word
        self.i = 0
        self.env = env
        self.esc = escape
        self.unknown: list[str] = []

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.i += 1
        return ch

    def process_stop_on(self, stop: str | None, raw_escapes: bool = False) -> str:
        out: list[str] = []
        while (ch := self.peek()) is not None:
            if stop is not None and ch == stop:
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.process_dollar())
            elif ch == "'":
                out.append(self.process_single_quote())
            elif ch == '"':
                out.append(self.process_double_quote())
            else:
                self.next()
                if ch == self.esc:
                    if raw_escapes:
                        out.append(ch)
                    nxt = self.next()
                    if nxt is None:
                        break
                    ch = nxt
                out.append(ch)
        if stop is not None:
            raise ShellSyntaxError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def process_single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch is None:
                raise ShellSyntaxError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def process_double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch is None:
                raise ShellSyntaxError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.process_dollar())
                continue
            self.next()
            if ch == self.esc:
                nxt = self.peek()
                if nxt is None:
                    continue  # lex.go ignores a trailing escape, then fails on the open quote
                if nxt in ('"', "$", self.esc):
                    ch = self.next() or ""
            out.append(ch)

    def lookup(self, name: str) -> tuple[str, bool] | None:
        got = self.env.get(name)
        if got is None:
            self.unknown.append(name)
        return got

    def process_dollar(self) -> str:
        self.next()  # "$"
        if self.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            got = self.lookup(name)
            return got[0] if got else ""
        self.next()  # "{"
        first = self.peek()
        if first is None:
            raise ShellSyntaxError("syntax error: missing '}'")
        if first in "{}:":
            raise ShellSyntaxError("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        if ch == "}":
            got = self.lookup(name)
            return got[0] if got else ""
        modifier = ch or ""
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch or ""
        if ch == "/" and not null_is_unset:
            if self.peek() == "/":
                self.next()
            self._word("/", raw=True, err="syntax error: missing '/' in ${}")
            self._word("}", raw=True)
            self.unknown.append(f"${{{name}/...}}")
            return ""
        if not null_is_unset and ch not in ("+", "-", "?", "#", "%"):
            raise ShellSyntaxError(f"unsupported modifier ({modifier}) in substitution")
        mark = len(self.unknown)
        word = self._word("}", raw=ch in ("#", "%"))
        word_unknown = self.unknown[mark:]
        del self.unknown[mark:]
        if ch in ("#", "%"):
            self.unknown.append(f"${{{name}{modifier}...}}")
            return ""
        if ch not in ("+", "-", "?"):
            raise ShellSyntaxError(f"unsupported modifier ({modifier}) in substitution")
        got = self.lookup(name)
        if got is None:
            return ""
        value, is_set = got
        empty = not is_set or (null_is_unset and value == "")
        if ch == "-":
            if empty:
                self.unknown.extend(word_unknown)
                return word
            return value
        if ch == "+":
            if empty:
                return ""
            self.unknown.extend(word_unknown)
            return word
        if empty:
            default = "is not allowed to be unset" if not is_set else "is not allowed to be empty"
            raise ShellSyntaxError(f"{name}: {word or default}")
        return value

    def _word(self, stop: str, *, raw: bool, err: str = "syntax error: missing '}'") -> str:
        try:
            return self.process_stop_on(stop, raw)
        except ShellSyntaxError:
            if self.peek() is None:
                raise ShellSyntaxError(err) from None
            raise

    def process_name(self) -> str:
        name: list[str] = []
        while (ch := self.peek()) is not None:
            if not name and ch.isdecimal():
                while (d := self.peek()) is not None and d.isdecimal():
                    name.append(d)
                    self.next()
                return "".join(name)
            if not name and ch in _SPECIAL_PARAMS:
                self.next()
                return ch
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(ch)
            self.next()
        return "".join(name)
