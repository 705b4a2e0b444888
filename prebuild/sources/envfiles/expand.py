"""Word expansion with bash's rules: parameter expansion (and its side effects), arithmetic,
quote removal, and, for command arguments, field splitting. What depends on the machine
(command output, pathname expansion, tilde, special parameters) is unknown with its cause."""

from __future__ import annotations

import re
from pathlib import Path

from prebuild.errors import ConfigError
from prebuild.sources.envfiles import arith
from prebuild.sources.envfiles.state import State
from prebuild.sources.envfiles.tokens import NAME, Arith, CmdSub, Lit, Opaque, Param, Part, Word
from prebuild.sources.envfiles.values import Cause, Unknown, Value

_GLOB = re.compile(r"[*?]|\[.*\]", re.DOTALL)
_IFS = " \t\n"
Segment = tuple[str, bool]  # (text, produced by an unquoted expansion: split and glob it)


class Expander:
    """Expansion against `self.state`; the evaluator supplies file, line and certainty."""

    state: State
    path: Path
    shown: str
    certain: bool  # False on paths that may not run (an error there is not certain)

    def cause(self, line: int, what: str) -> Cause:
        return Cause(self.shown, line, what)

    def fail(self, message: str, line: int) -> None:
        """A certain error stops bash: a located ConfigError; on an uncertain path, the
        reader only loses track of what follows."""
        if self.certain:
            hint = (
                "env files are read from an empty environment plus the source's [source.env] "
                "table: put values the CI passes in there"
            )
            raise ConfigError(message, file=self.shown, line=line, hint=hint)
        self.state.poisoned(self.cause(line, message))

    def assign(self, name: str, value: Value, line: int) -> None:
        raise NotImplementedError

    # -- assignment context: no splitting, no pathname expansion -----------------------------
    def value(
        self, parts: list[Part] | tuple[Part, ...], *, assignment: bool = False, line: int = 0
    ) -> Value:
        pieces: list[str] = []
        unknown: Unknown | None = None
        for index, part in enumerate(parts):
            if isinstance(part, Lit):
                if not part.quoted and self._tilde(part.text, index == 0, assignment):
                    unknown = unknown or Unknown(self.cause(line, "tilde expansion"))
                pieces.append(part.text)
                continue
            result = self.part(part)
            if isinstance(result, Unknown):
                unknown = unknown or result
            else:
                pieces.append(result)
        return unknown if unknown is not None else "".join(pieces)

    @staticmethod
    def _tilde(text: str, first: bool, assignment: bool) -> bool:
        return (first and text.startswith("~")) or (assignment and ":~" in text)

    def part(self, part: Part) -> Value:
        if isinstance(part, Lit):
            return part.text
        if isinstance(part, Param):
            return self.param(part)
        if isinstance(part, Arith):
            return self.arithmetic(part)
        if isinstance(part, CmdSub):
            self.command_substitution(part)
            what = "backticks" if part.backticks else "command substitution $(...)"
            return Unknown(self.cause(part.line, what))
        assert isinstance(part, Opaque)
        return Unknown(self.cause(part.line, part.what))

    def command_substitution(self, part: CmdSub) -> None:
        """Runs in a subshell: no variable changes; the evaluator checks it for file writes."""

    def param(self, p: Param) -> Value:
        cause = self.cause(p.line, f"${{{p.name}...}}")
        if not NAME.fullmatch(p.name):
            return Unknown(self.cause(p.line, f"special parameter ${p.name}"))
        if p.op == "other":
            self.maybe_assigned(p.word, cause)
            return Unknown(self.cause(p.line, f"parameter expansion operator in ${{{p.name}...}}"))
        value = self.state.get(p.name, cause)
        if self.state.nounset and isinstance(value, Unknown) and p.op in ("", "len", "ind"):
            state = self.state
            if state.poison or p.name in state.maybe_unset or p.name not in state.vars:
                state.poisoned(self.cause(p.line, f"${p.name} may be unbound (set -u is on)"))
        if p.op in ("len", "ind"):
            return self._len_or_indirect(p, value)
        if not p.op:
            if value is None:
                if self.state.nounset:
                    self.fail(f"{p.name}: unbound variable (set -u is on)", p.line)
                    return Unknown(self.cause(p.line, "unbound variable"))
                return ""
            return value
        if isinstance(value, Unknown):
            self.maybe_assigned(p.word, value.cause)
            if p.op.endswith("?"):  # may be the error that ends the shell
                self.state.poisoned(self.cause(p.line, f"${{{p.name}{p.op}...}} of an unknown"))
            return value
        kind = p.op[-1]
        missing = value is None or (p.op.startswith(":") and value == "")
        if kind == "+":
            return "" if missing else self.value(p.word)
        if not missing:
            return value  # type: ignore[return-value]
        if kind == "?":
            message = self.value(p.word)
            text = message if isinstance(message, str) and message else "parameter null or not set"
            self.fail(f"{p.name}: {text}", p.line)
            return Unknown(self.cause(p.line, f"${{{p.name}:?}} error"))
        default = self.value(p.word)
        if kind == "=":
            self.assign(p.name, default, p.line)
        return default

    def _len_or_indirect(self, p: Param, value: Value | None) -> Value:
        if isinstance(value, Unknown):
            if p.op == "ind":  # an invalid name would make bash abandon the command
                self.state.poisoned(self.cause(p.line, f"indirection ${{!{p.name}}} of an unknown"))
            return value
        if p.op == "len":
            if value is None and self.state.nounset:
                self.fail(f"{p.name}: unbound variable (set -u is on)", p.line)
            text = value or ""
            return (
                str(len(text))
                if text.isascii()
                else Unknown(self.cause(p.line, "${#...} of non-ASCII text"))
            )
        if value is None or not NAME.fullmatch(value):
            cause = self.cause(p.line, f"indirection ${{!{p.name}}} to an invalid name")
            self.state.poisoned(cause)  # bash abandons the whole command it is running
            return Unknown(cause)
        target = self.state.get(value, self.cause(p.line, f"${{!{p.name}}}"))
        return "" if target is None else target

    def maybe_assigned(self, parts: tuple[Part, ...] | list[Part], cause: Cause) -> None:
        """Words that may or may not be expanded: what their `${X:=...}` assign is unknown."""
        for part in parts:
            if isinstance(part, Param):
                if part.op.endswith("=") and NAME.fullmatch(part.name):
                    self.state.unknown(part.name, cause, (self.path, part.line))
                self.maybe_assigned(part.word, cause)
            elif isinstance(part, Arith):
                self.maybe_assigned(part.parts, cause)
                self.state.poisoned(self.cause(part.line, "arithmetic that may not run"))

    def arithmetic(self, part: Arith) -> Value:
        text = self.value(part.parts)
        cause = self.cause(part.line, "arithmetic $((...))")
        if isinstance(text, Unknown):
            self.state.poisoned(Cause(self.shown, part.line, "arithmetic over an unknown value"))
            return text
        lookup = lambda name: self.state.get(name, cause)  # noqa: E731
        result = arith.evaluate(text, lookup)
        if result == arith.ASSIGNS:
            self.state.poisoned(self.cause(part.line, "arithmetic that can assign variables"))
            return Unknown(cause)
        return Unknown(cause) if result is None else str(result)

    # -- command arguments: field splitting; pathname expansion is unknown ---------------------
    def fields(self, words: list[Word]) -> list[str] | Unknown:
        out: list[str] = []
        unknown: Unknown | None = None
        for word in words:  # every word is expanded: `${X:=...}` assigns even so
            result = self.word_fields(word)
            if isinstance(result, Unknown):
                unknown = unknown or result
            else:
                out += result
        return unknown if unknown is not None else out

    def word_fields(self, word: Word) -> list[str] | Unknown:
        segments: list[Segment] = []
        quoted_any = False
        unknown: Unknown | None = None
        for index, part in enumerate(word.parts):
            if isinstance(part, Lit):
                if not part.quoted:
                    if self._tilde(part.text, index == 0, False):
                        unknown = unknown or Unknown(self.cause(word.line, "tilde expansion"))
                    if _GLOB.search(part.text) or _brace(part.text):
                        what = "pathname or brace expansion"
                        unknown = unknown or Unknown(self.cause(word.line, what))
                quoted_any = quoted_any or part.quoted
                segments.append((part.text, False))
                continue
            if isinstance(part, Param) and not part.quoted and _has_quoted(part.word):
                what = "quoted text inside an unquoted ${...}"
                unknown = unknown or Unknown(self.cause(word.line, what))
            quoted = part.quoted if not isinstance(part, Opaque) else True
            quoted_any = quoted_any or quoted
            result = self.part(part)
            if isinstance(result, Unknown):
                unknown = unknown or result
            else:
                segments.append((result, not quoted))
        if unknown is not None:
            return unknown
        return self._split(segments, quoted_any, word.line)

    def _split(self, segments: list[Segment], quoted_any: bool, line: int) -> list[str] | Unknown:
        fields: list[str] = []
        current: list[str] = []
        have = quoted_any and not any(split for _, split in segments)
        started = False
        for text, split in segments:
            if not split:
                current.append(text)
                started = started or bool(text) or quoted_any
                continue
            if not self.state.ifs_default:
                return Unknown(self.cause(line, "word splitting with a changed IFS"))
            if _GLOB.search(text):
                return Unknown(self.cause(line, "pathname expansion of a value"))
            pieces = re.split(f"[{_IFS}]+", text)
            for index, piece in enumerate(pieces):
                if index:
                    if current or started:
                        fields.append("".join(current))
                    current, started = [], False
                if piece:
                    current.append(piece)
                    started = True
        if current or started or have:
            fields.append("".join(current))
        return fields


def _brace(text: str) -> bool:
    """Unquoted text that brace expansion would change ({a,b} or {1..3})."""
    return bool(re.search(r"\{[^{}]*(,|\.\.)[^{}]*\}", text))


def _has_quoted(parts: tuple[Part, ...]) -> bool:
    return any(
        (isinstance(p, Lit) and p.quoted) or (isinstance(p, Param) and _has_quoted(p.word))
        for p in parts
    )
