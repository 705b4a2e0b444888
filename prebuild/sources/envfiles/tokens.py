"""Tokenizer for bash env files: words (with their quoting and expansions), operators,
redirections. Linear in the file size; nesting is bounded (MAX_NESTING) so no input can
exhaust Python's stack.

Why separate from the parser: word syntax (quotes, `${...}`, `$(...)`, `$((...))`, escapes) is
where bash's rules are subtle; the parser only sees tokens. `$(...)` bodies are parsed by the
parser (a callback), because only a real parse finds the closing `)` the way bash does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn

from prebuild.errors import ConfigError
from prebuild.sources.envfiles.values import MAX_NESTING
from prebuild.sources.envfiles.words import (
    Arith,
    CmdSub,
    Lit,
    Op,
    Opaque,
    Param,
    Part,
    Redir,
    Token,
    Word,
)

__all__ = ["NAME", "Arith", "CmdSub", "Lexer", "Lit", "Op", "Opaque", "Param", "Part", "Redir"]
__all__ += ["Token", "Word"]

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = {  # runs of characters with no meaning in each context
    "word": re.compile(r"[^ \t\n;&|<>()'\"\\$`]+"),
    "dq": re.compile(r"[^\"\\$`]+"),
    "brace": re.compile(r"[^}'\"\\$`]+"),
    "brace_dq": re.compile(r"[^}\"\\$`]+"),
    "arith": re.compile(r"[^()\"'\\$`]+"),
}
_BLANKS = re.compile(r"[ \t]+")
_DQ_ESCAPES = '$`"\\\n'
_SPECIAL = "@*#?-$!0123456789"
_OPS = ("&&", "||", ";;&", ";;", ";&", "|&", "&", "|", ";", "(", ")", "\n")
_REDIRS = ("&>>", "&>", ">>", ">|", ">&", "<&", "<>", ">", "<")
_OPERATOR_START = set("&|;()\n<>")
_FD = re.compile(r"[0-9]+(?=[<>])")


class _Builder:
    """Collects a word's parts; literal runs are joined once (linear in the text)."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.chunks: list[str] = []
        self.quoted = False

    def text(self, text: str, quoted: bool) -> None:
        if self.chunks and quoted != self.quoted:
            self._flush()
        self.quoted = quoted
        self.chunks.append(text)

    def part(self, part: Part) -> None:
        self._flush()
        self.parts.append(part)

    def _flush(self) -> None:
        if self.chunks:
            self.parts.append(Lit("".join(self.chunks), self.quoted))
            self.chunks = []

    def done(self) -> list[Part]:
        self._flush()
        return self.parts


class Lexer:
    """Pull tokenizer over one file's text. `subparse` parses a `$(...)` body (set by parser)."""

    def __init__(self, text: str, shown: str) -> None:
        self.text, self.shown = text, shown
        self.pos, self.line, self.depth = 0, 1, 0
        self.dbracket = False  # inside [[ ... ]]: < > are words
        self.subparse: Callable[[Lexer], object] | None = None
        self.parse_text: Callable[[str, str], object] | None = None
        if "\0" in text:
            self.fail("file contains a NUL byte", line=text.count("\n", 0, text.index("\0")) + 1)

    def fail(self, message: str, *, line: int | None = None) -> NoReturn:
        raise ConfigError(message, file=self.shown, line=line or self.line)

    def _advance(self, count: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def _peek(self, offset: int = 0) -> str:
        return self.text[self.pos + offset : self.pos + offset + 1]

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.fail(f"nested more than {MAX_NESTING} levels deep")

    def skip_blanks(self) -> None:
        while True:
            if match := _BLANKS.match(self.text, self.pos):
                self._advance(match.end() - self.pos)
            if self.text.startswith("\\\n", self.pos):
                self._advance(2)
            elif self._peek() == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def at(self, text: str) -> bool:
        return self.text.startswith(text, self.pos)

    def next(self) -> Token | None:
        """The next token, or None at end of text."""
        self.skip_blanks()
        if self.pos >= len(self.text):
            return None
        line = self.line
        char = self.text[self.pos]
        if self.dbracket and char in "<>":
            self._advance(1)
            return Word([Lit(char, False)], line)
        if char.isdigit() and not self.dbracket and (match := _FD.match(self.text, self.pos)):
            self._advance(match.end() - self.pos)  # an fd number: 2>&1
            char = self.text[self.pos]
        if char not in _OPERATOR_START:
            return self._word_or_fail()
        for redir in () if self.dbracket else _REDIRS:
            if self.at(redir):
                if self.at("<<"):
                    self.fail("not supported: here-documents ('<<')")
                self._advance(len(redir))
                self.skip_blanks()
                target = self.word()
                if target is None:
                    self.fail(f"redirection '{redir}' without a target")
                return Redir(redir, target, line)
        for op in _OPS:
            if self.at(op):
                self._advance(len(op))
                return Op(op, line)
        return self._word_or_fail()

    def _word_or_fail(self) -> Word:
        word = self.word()
        if word is None:
            self.fail(f"syntax error near unexpected {self.text[self.pos]!r}")
        return word

    def word(self) -> Word | None:
        """One word at pos (None when pos is at a metacharacter)."""
        line = self.line
        parts = self._until("word")
        return Word(parts, line) if parts else None

    def _until(self, context: str, opened: int = 0) -> list[Part]:
        """Parts up to the end of the context: an unquoted word ends at a metacharacter
        (not consumed); "dq" and "brace*" end at their closing character (consumed)."""
        build, plain = _Builder(), _PLAIN[context]
        in_dq = context in ("dq", "brace_dq")
        quoted_text = in_dq
        closer = {"dq": '"', "brace": "}", "brace_dq": "}"}.get(context)
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if match := plain.match(text, self.pos):
                build.text(match.group(), quoted_text)
                self._advance(match.end() - self.pos)
            elif char == closer:
                self._advance(1)
                return build.done() or [Lit("", True)]
            elif closer is None and char in " \t\n;&|<>()":
                return build.done()
            elif char == "\\":
                self._backslash(build, in_dq, quoted_text, "}" if closer == "}" else "")
            elif char == "$":
                self._dollar(build, in_dq)
            elif char == "`":
                self._backticks(build, in_dq)
            elif char == "'" and not in_dq:
                end = text.find("'", self.pos + 1)
                if end < 0:
                    self.fail(f"unterminated single quote opened at line {self.line}")
                build.text(text[self.pos + 1 : end], True)
                self._advance(end + 1 - self.pos)
            elif char == '"':
                line = self.line
                self._enter()
                self._advance(1)
                for part in self._until("dq", line):
                    build.part(part) if not isinstance(part, Lit) else build.text(part.text, True)
                self.depth -= 1
            else:  # a quote character that is literal here
                build.text(char, quoted_text)
                self._advance(1)
        if closer is not None:
            what = "double quote" if closer == '"' else "'${'"
            self.fail(f"unterminated {what} opened at line {opened}", line=opened)
        return build.done()

    def _backslash(self, build: _Builder, in_dq: bool, quoted_text: bool, extra: str = "") -> None:
        follower = self._peek(1)
        if follower == "\n":
            self._advance(2)
        elif not in_dq and follower or in_dq and follower and follower in _DQ_ESCAPES + extra:
            build.text(follower, True)
            self._advance(2)
        else:
            build.text("\\", quoted_text or in_dq)
            self._advance(1)

    def _backticks(self, build: _Builder, in_dq: bool) -> None:
        line, pos = self.line, self.pos + 1
        while pos < len(self.text) and self.text[pos] != "`":
            pos += 2 if self.text[pos] == "\\" else 1
        if pos >= len(self.text):
            self.fail(f"unterminated backtick opened at line {line}", line=line)
        raw = self.text[self.pos + 1 : pos]
        self._advance(pos + 1 - self.pos)
        body = re.sub(r"\\([$`\\])", r"\1", raw)  # inside backticks, \$ \` \\ are escapes
        if self.parse_text is None:
            self.fail("backticks outside a parser")
        self._enter()
        tree = self.parse_text("\n" * (line - 1) + body, self.shown)
        self.depth -= 1
        build.part(CmdSub(tree, line, in_dq, backticks=True))

    def _dollar(self, build: _Builder, in_dq: bool) -> None:
        line = self.line
        nxt = self._peek(1)
        if nxt == "(" and self._peek(2) == "(":
            self._advance(3)
            build.part(Arith(tuple(self.arith_body(line)), line, in_dq))
        elif nxt == "(":
            self._advance(2)
            build.part(CmdSub(self._subst_body(line), line, in_dq))
        elif nxt == "{":
            self._advance(2)
            build.part(self._braced(line, in_dq))
        elif nxt == "[":
            self.fail("not supported: arithmetic '$[...]' (use $((...)))")
        elif nxt == "'" and not in_dq:
            end, pos = -1, self.pos + 2
            while pos < len(self.text):
                if self.text[pos] == "\\":
                    pos += 2
                elif self.text[pos] == "'":
                    end = pos
                    break
                else:
                    pos += 1
            if end < 0:
                self.fail(f"unterminated $'...' opened at line {line}")
            self._advance(end + 1 - self.pos)
            build.part(Opaque("$'...' quoting", line, True))
        elif nxt == '"' and not in_dq:
            self._advance(1)  # $"..." is "..." (no message catalogs in an empty environment)
        elif match := NAME.match(self.text, self.pos + 1):
            self._advance(match.end() - self.pos)
            build.part(Param(match.group(), "", (), line, in_dq))
        elif nxt and nxt in _SPECIAL:
            self._advance(2)
            build.part(Param(nxt, "", (), line, in_dq))
        else:
            build.text("$", in_dq)
            self._advance(1)

    def _subst_body(self, line: int) -> object:
        if self.subparse is None:
            self.fail("command substitution outside a parser")
        self._enter()
        saved, self.dbracket = self.dbracket, False
        body = self.subparse(self)
        self.dbracket = saved
        self.skip_blanks()
        if self._peek() != ")":
            self.fail(f"unterminated '$(' opened at line {line}", line=line)
        self._advance(1)
        self.depth -= 1
        return body

    def arith_body(self, line: int) -> list[Part]:
        """Parts of an arithmetic expression up to its closing `))` (consumed)."""
        self._enter()
        build, depth, text = _Builder(), 0, self.text
        while self.pos < len(text):
            char = text[self.pos]
            if match := _PLAIN["arith"].match(text, self.pos):
                build.text(match.group(), False)
                self._advance(match.end() - self.pos)
            elif char == "(":
                depth += 1
                build.text(char, False)
                self._advance(1)
            elif char == ")" and depth:
                depth -= 1
                build.text(char, False)
                self._advance(1)
            elif char == ")":
                if self._peek(1) != ")":
                    self.fail(f"arithmetic opened at line {line} does not end with '))'")
                self._advance(2)
                self.depth -= 1
                return build.done()
            elif char == "$":
                self._dollar(build, True)
            elif char == "\\":
                self._backslash(build, True, False)
            else:  # quotes and backticks: rare in arithmetic; the value is not computed
                build.part(Opaque("quoting inside arithmetic", self.line, False))
                self._until("word") if char != "`" else self._backticks(build, True)
        self.fail(f"unterminated arithmetic opened at line {line}", line=line)

    def _braced(self, line: int, in_dq: bool) -> Param:
        """After `${`: a name (or special parameter) and an optional operator and word."""
        self._enter()
        text = self.text
        prefix = ""
        if self._peek() in "#!" and self._peek(1) not in ("}", ""):
            prefix = self._peek()
            self._advance(1)
        match = NAME.match(text, self.pos) or re.compile(r"[0-9]+|[@*#?$!-]").match(text, self.pos)
        if not match:
            self.fail("bad substitution: '${' without a parameter name")
        name = match.group()
        self._advance(match.end() - self.pos)
        context = "brace_dq" if in_dq else "brace"
        if prefix:
            op = "len" if prefix == "#" else "ind"
            if self._peek() != "}":  # ${!prefix*}, ${#arr[@]} ...: not computed
                op, word = "other", tuple(self._until(context, line))
            else:
                self._advance(1)
                word = ()
            self.depth -= 1
            return Param(name, op, word, line, in_dq)
        char = self._peek()
        if char == "}":
            self._advance(1)
            self.depth -= 1
            return Param(name, "", (), line, in_dq)
        op = "other"
        for candidate in (":-", ":=", ":+", ":?", "-", "=", "+", "?"):
            if self.at(candidate):
                op = candidate
                self._advance(len(candidate))
                break
        word = tuple(self._until(context, line))
        self.depth -= 1
        return Param(name, op, word, line, in_dq)

    def dbracket_regex(self) -> int:
        """Skip the right side of `=~` (a regex with its own rules) up to ` ]]`; returns its
        line. The comparison's result is unknown anyway."""
        line = self.line
        end = re.compile(r"[ \t]\]\](?=[ \t\n;&|)]|$)").search(self.text, self.pos)
        if end is None:
            self.fail("'[[' without ']]'")
        if "$" in self.text[self.pos : end.start()] or "`" in self.text[self.pos : end.start()]:
            self.fail("not supported: expansions in a '=~' regex")
        self._advance(end.start() - self.pos)
        return line
