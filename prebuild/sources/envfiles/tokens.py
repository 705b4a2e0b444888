"""Tokenizer for the bash subset that bashenv reads statically.

Why separate: what bash would parse as a construct bashenv does not evaluate (control flow,
command substitution, arithmetic, arrays, pipes, redirections, functions) is refused here, with
its line, before anything is evaluated; bashenv's reader only sees words made of literal text
and `$NAME` / `${NAME<op>word}` expansions. One command is tokenized at a time, because the
reader evaluates each before the next is read, as bash does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from prebuild.errors import ConfigError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?=)(.*)", re.DOTALL)
_WORD_END = " \t\n;&|<>()"
_RESERVED = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done"}
_RESERVED |= {"case", "esac", "function", "select", "time", "coproc", "{", "}", "[[", "]]", "!"}
_DQ_ESCAPES = '$`"\\'  # what a backslash escapes inside "..."
_BACKTICKS = "command substitution with backticks"
STATIC_HINT = (
    "env files are read statically (never executed): only assignments, export, unset, set, "
    "':' and echo are understood; compute such values outside the env file"
)


@dataclass(frozen=True)
class Lit:
    """Literal text; `quoted` text is exempt from syntax checks (assignment, tilde, braces)."""

    text: str
    quoted: bool


@dataclass(frozen=True)
class Param:
    """A `$NAME` / `${NAME<op>word}` expansion, evaluated only when the reader reaches it."""

    name: str
    op: str  # "" for plain $NAME / ${NAME}; else one of - = + ? with or without a leading ":"
    word: tuple[Lit | Param, ...]
    line: int


Part = Lit | Param


@dataclass
class Word:
    """One shell word: its parts in order and the line it starts on."""

    parts: list[Part]
    line: int


class Lexer:
    """Splits one file's text into commands (lists of words); raises on unsupported syntax."""

    def __init__(self, text: str, shown: str) -> None:
        self.text, self.shown = text, shown
        self.pos, self.line = 0, 1
        for bad, what in (("\r", "a carriage return (CRLF line ends?)"), ("\0", "a NUL byte")):
            if bad in text:
                self.fail(f"file contains {what}", line=text.count("\n", 0, text.index(bad)) + 1)

    def fail(self, message: str, *, line: int | None = None, hint: str | None = None) -> NoReturn:
        """A located ConfigError; `line` defaults to where the tokenizer is."""
        raise ConfigError(message, file=self.shown, line=line or self.line, hint=hint)

    def unsupported(self, what: str, *, line: int | None = None) -> NoReturn:
        self.fail(f"not supported: {what}", line=line, hint=STATIC_HINT)

    def _peek(self, offset: int = 0) -> str:
        return self.text[self.pos + offset : self.pos + offset + 1]

    def _advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def command(self) -> list[Word] | None:
        """Words up to the next newline or `;`; None at end of file."""
        words: list[Word] = []
        while True:
            char = self._peek()
            if char == "":
                return words if words else None
            if char in " \t":
                self._advance()
            elif char == "\\" and self._peek(1) == "\n":
                self._advance(2)
            elif char == "\n":
                self._advance()
                if words:
                    return words
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            elif char == ";":
                if self._peek(1) == ";" or not words:
                    self.fail("unexpected ';'")
                self._advance()
                return words
            elif char in "&|<>()":
                self._operator_error(char, words)
            else:
                words.append(self._word())
                if len(words) == 1:  # reject keywords before reading their (other) syntax
                    self.check_head(words[0])

    def _operator_error(self, char: str, words: list[Word]) -> NoReturn:
        if char == "(" and self._peek(1) == "(":
            self.unsupported("arithmetic '((...))'")
        if char == "(":
            self.unsupported("function definitions" if words else "subshells '( ... )'")
        what = {"&": "'&' and '&&'", "|": "pipes and '||'", ")": "')'"}.get(char, "redirections")
        self.unsupported(what)

    def _word(self) -> Word:
        """One unquoted-context word: literal characters, quotes, escapes and expansions."""
        word = Word([], self.line)
        word.parts = self._until(_WORD_END, in_dq=False, escapable=None, quotes="'\"")
        if self._peek() == "(" and word.parts:
            shape = shape_of(word.parts)
            if re.fullmatch(r"[A-Za-z_]\w*\+?=", shape):
                self.unsupported("arrays")
            self.unsupported("function definitions" if NAME.fullmatch(shape) else "'(' in a word")
        return word

    def _backslash(self, parts: list[Part], escapable: str | None) -> None:
        """A backslash (at pos): line continuation, an escape, or (in quotes) a literal `\\`.
        `escapable` None means every character can be escaped (unquoted context)."""
        follower = self._peek(1)
        if follower == "\n":
            self._advance(2)
        elif escapable is None or (follower and follower in escapable):
            _add(parts, follower or "\\", quoted=True)
            self._advance(2 if follower else 1)
        else:
            _add(parts, "\\", quoted=True)
            self._advance()

    def _single(self) -> Lit:
        opened = self.line
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            self.fail(f"unterminated single quote opened at line {opened}", line=opened)
        text = self.text[self.pos + 1 : end]
        self._advance(end + 1 - self.pos)
        return Lit(text, quoted=True)

    def _double(self) -> list[Part]:
        opened = self.line
        self._advance()
        return self._until(
            '"', in_dq=True, escapable=_DQ_ESCAPES, quotes="", what="double quote", opened=opened
        )

    def _until(
        self,
        stop: str,
        *,
        in_dq: bool,
        escapable: str | None,
        quotes: str,
        what: str = "",
        opened: int = 0,
    ) -> list[Part]:
        """Parts up to a `stop` character: an unquoted word (stop not consumed, as it ends the
        word), or, when `what` names the construct, the body of "..." or of `${NAME:-word}` (stop
        required and consumed). `quotes` start nested quoting (in "${X:-'a'}", ' is literal)."""
        parts: list[Part] = [Lit("", quoted=True)] if what else []  # "" is a (quoted) word
        while (char := self._peek()) and char not in stop:
            if char == "\\":
                self._backslash(parts, escapable)
            elif char == "$":
                parts.append(self._dollar(in_dq=in_dq))
            elif char == "`":
                self.unsupported(_BACKTICKS)
            elif char == '"' and char in quotes:
                parts.extend(self._double())
            elif char == "'" and char in quotes:
                parts.append(self._single())
            else:
                _add(parts, char, quoted=in_dq)
                self._advance()
        if what and not char:
            self.fail(f"unterminated {what} opened at line {opened}", line=opened)
        if what:
            self._advance()
        return parts

    def _dollar(self, *, in_dq: bool) -> Part:
        """What follows a `$` (at pos): a parameter expansion, or a literal `$`."""
        line = self.line
        self._advance()
        char = self._peek()
        if char == "(":
            arithmetic = self._peek(1) == "("
            self.unsupported(
                "arithmetic '$((...))'" if arithmetic else "command substitution '$(...)'"
            )
        if char == "[":
            self.unsupported("arithmetic '$[...]'")
        if char == "{":
            return self._braced(in_dq=in_dq)
        if char and char in "'\"" and not in_dq:
            self.unsupported(f"{char}...{char} quoting after '$'")
        if match := NAME.match(self.text, self.pos):
            self._advance(match.end() - self.pos)
            return Param(match.group(), "", (), line)
        if char and (char.isdigit() or char in "@*#?-$!"):
            self.unsupported(f"special parameter '${char}'")
        return Lit("$", quoted=in_dq)

    def _braced(self, *, in_dq: bool) -> Param:
        """`${NAME}` or `${NAME<op>word}` (pos at the `{`)."""
        opened = self.line
        self._advance()
        match = NAME.match(self.text, self.pos)
        if not match:
            what = {"#": "length '${#...}'", "!": "indirection '${!...}'"}.get(self._peek())
            self.unsupported(what or "this parameter expansion")
        name = match.group()
        self._advance(match.end() - self.pos)
        char = self._peek()
        if char == "}":
            self._advance()
            return Param(name, "", (), opened)
        if char == "[":
            self.unsupported("arrays")
        op = char if char in ("-", "=", "+", "?") else ""
        if char == ":" and self._peek(1) in ("-", "=", "+", "?"):
            op = ":" + self._peek(1)
        if not op:
            rest = self.text[self.pos : self.pos + 6].split("\n")[0]
            self.unsupported(f"'${{{name}{rest}...' (only ${{NAME}} and ${{NAME:-word}} forms)")
        self._advance(len(op))
        if not in_dq and self._peek() == "~":
            self.unsupported("tilde expansion (write the path out)")
        escapable = _DQ_ESCAPES + "}" if in_dq else None
        quotes = '"' if in_dq else "'\""
        word = self._until(
            "}", in_dq=in_dq, escapable=escapable, quotes=quotes, what="'${'", opened=opened
        )
        return Param(name, op, tuple(word), opened)

    def check_head(self, head: Word) -> str:
        """The command name of a command starting with `head`, if it may be one at all."""
        if split_assignment(head):
            return ""
        command = literal(head)
        if command is None:
            self.unsupported("a command name that is not a literal word", line=head.line)
        if command in _RESERVED:
            self.unsupported(f"'{command}' (control flow)", line=head.line)
        if command in ("source", "."):
            self.fail(
                f"not supported: '{command}' (other files are not followed)",
                line=head.line,
                hint="list the file in the source's `shared` setting instead",
            )
        if re.match(r"[A-Za-z_]\w*\[", command):
            self.unsupported("arrays", line=head.line)
        return command


def _add(parts: list[Part], text: str, *, quoted: bool) -> None:
    """Append literal text, merging with a preceding literal of the same quoting."""
    last = parts[-1] if parts else None
    if isinstance(last, Lit) and last.quoted == quoted:
        parts[-1] = Lit(last.text + text, quoted)
    else:
        parts.append(Lit(text, quoted))


def shape_of(parts: Sequence[Part]) -> str:
    """Unquoted literal text kept, everything else masked: for syntax checks on a word."""
    return "".join(p.text if isinstance(p, Lit) and not p.quoted else "\0" for p in parts)


def literal(word: Word) -> str | None:
    """The word's text when it has no expansions (quotes allowed), else None."""
    if any(isinstance(p, Param) for p in word.parts):
        return None
    return "".join(p.text for p in word.parts if isinstance(p, Lit))


def split_assignment(word: Word) -> tuple[str, str, list[Part]] | None:
    """(name, "=" or "+=", value parts) when the word is an assignment, as bash decides it:
    the name and `=` must be unquoted literal text at the start of the word."""
    first = word.parts[0] if word.parts else None
    if not isinstance(first, Lit) or first.quoted:
        return None
    match = _ASSIGNMENT.fullmatch(first.text)
    if not match:
        return None
    name, op, rest = match.groups()
    value: list[Part] = [Lit(rest, quoted=False)] if rest else []
    return name, op, value + word.parts[1:]
