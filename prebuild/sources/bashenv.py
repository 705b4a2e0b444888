"""Static reader for bash env files (`export VAR=value`), without running bash.

Trust model: env files live in the repository, so in CI they may come from an untrusted pull
request. Sourcing them with bash on the prebuild host would let that pull request run any code
next to registry and cache credentials. Nothing is executed here: the text is tokenized and
evaluated in Python, following bash's rules for the constructs listed below, and everything
else (command substitution, arithmetic, arrays, control flow, functions, `source`, pipes,
redirections, any other command) is a located ConfigError rather than a guess. A file is either
read exactly as bash would read it, or rejected.

Understood: `NAME=value`, `NAME+=value`, several assignments per line, `export NAME=value`,
`export A B`, `unset`, `set` options (`-u` is honoured), `:`, `true`, `echo` (arguments are
expanded for their side effects only), single and double quotes (also spanning lines),
backslash escapes and backslash-newline continuations, comments, `$NAME`, `${NAME}` and
`${NAME<op>word}` for the ops `- := = + ?` with and without `:`. Unknown variables expand to ""
as in bash without `set -u`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from prebuild.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?=)(.*)", re.DOTALL)
_WORD_END = " \t\n;&|<>()"
_RESERVED = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done"}
_RESERVED |= {"case", "esac", "function", "select", "time", "coproc", "{", "}", "[[", "]]", "!"}
_NOOP_COMMANDS = {":", "true", "echo"}
_DQ_ESCAPES = '$`"\\'  # what a backslash escapes inside "..."
_BACKTICKS = "command substitution with backticks"
_STATIC_HINT = (
    "env files are read statically (never executed): only assignments, export, unset, set, "
    "':' and echo are understood; compute such values outside the env file"
)


@dataclass(frozen=True)
class EnvResult:
    """Variables after reading: `values` (exported or not), where each was last set (`lines`),
    every place it was set in order (`history`, to blame a job file over a shared default that
    merely re-assigned its value), and which are exported."""

    values: dict[str, str]
    lines: dict[str, tuple[Path, int]]
    exported: frozenset[str]
    history: dict[str, tuple[tuple[Path, int], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Lit:
    text: str
    quoted: bool


@dataclass(frozen=True)
class _Param:
    name: str
    op: str  # "" for plain $NAME / ${NAME}; else one of - = + ? with or without a leading ":"
    word: tuple[_Lit | _Param, ...]
    line: int


_Part = _Lit | _Param


@dataclass
class _Word:
    parts: list[_Part]
    line: int


def read_env(
    files: Sequence[Path], *, initial: Mapping[str, str] | None = None, root: Path | None = None
) -> EnvResult:
    """Read `files` in order into one shell state, as if each were sourced by the same bash.

    `initial` is the starting environment (exported, like real environment variables). Error
    messages name files relative to `root` when given.
    """
    state = _State(dict(initial or {}))
    state.exported.update(state.values)
    for path in files:
        shown = _display(path, root)
        try:
            text = path.read_bytes().decode("utf-8")  # no newline translation: bash has none
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"cannot read env file: {reason}", file=shown) from None
        _Reader(text, path, shown, state).run()
    values = state.values
    exported = frozenset(n for n in state.exported if n in values)
    history = {name: tuple(places) for name, places in state.history.items()}
    lines = {name: places[-1] for name, places in history.items()}
    return EnvResult(dict(values), lines, exported, history)


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


@dataclass
class _State:
    """Shell state shared by all files of one read (they are sourced into the same shell)."""

    values: dict[str, str]
    history: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)
    nounset: bool = False
    allexport: bool = False


class _Reader:
    """Tokenizes one file command by command and evaluates each before reading the next."""

    def __init__(self, text: str, path: Path, shown: str, state: _State) -> None:
        self.text, self.path, self.shown, self.state = text, path, shown, state
        self.pos, self.line = 0, 1
        for bad, what in (("\r", "a carriage return (CRLF line ends?)"), ("\0", "a NUL byte")):
            if bad in text:
                self._fail(f"file contains {what}", line=text.count("\n", 0, text.index(bad)) + 1)

    def _fail(self, message: str, *, line: int | None = None, hint: str | None = None) -> NoReturn:
        raise ConfigError(message, file=self.shown, line=line or self.line, hint=hint)

    def _unsupported(self, what: str, *, line: int | None = None) -> NoReturn:
        self._fail(f"not supported: {what}", line=line, hint=_STATIC_HINT)

    def run(self) -> None:
        while (words := self._command()) is not None:
            if words:
                self._execute(words)

    # -- tokenizer ------------------------------------------------------------------------------

    def _peek(self, offset: int = 0) -> str:
        return self.text[self.pos + offset : self.pos + offset + 1]

    def _advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def _command(self) -> list[_Word] | None:
        """Words up to the next newline or `;`; None at end of file."""
        words: list[_Word] = []
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
                    self._fail("unexpected ';'")
                self._advance()
                return words
            elif char in "&|<>()":
                self._operator_error(char, words)
            else:
                words.append(self._word())
                if len(words) == 1:  # reject keywords before reading their (other) syntax
                    self._check_head(words[0])

    def _operator_error(self, char: str, words: list[_Word]) -> NoReturn:
        if char == "(" and self._peek(1) == "(":
            self._unsupported("arithmetic '((...))'")
        if char == "(":
            self._unsupported("function definitions" if words else "subshells '( ... )'")
        what = {"&": "'&' and '&&'", "|": "pipes and '||'", ")": "')'"}.get(char, "redirections")
        self._unsupported(what)

    def _word(self) -> _Word:
        """One unquoted-context word: literal characters, quotes, escapes and expansions."""
        word = _Word([], self.line)
        word.parts = self._until(_WORD_END, in_dq=False, escapable=None, quotes="'\"")
        if self._peek() == "(" and word.parts:
            shape = _shape(word.parts)
            if re.fullmatch(r"[A-Za-z_]\w*\+?=", shape):
                self._unsupported("arrays")
            self._unsupported("function definitions" if _NAME.fullmatch(shape) else "'(' in a word")
        return word

    def _backslash(self, parts: list[_Part], escapable: str | None) -> None:
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

    def _single(self) -> _Lit:
        opened = self.line
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            self._fail(f"unterminated single quote opened at line {opened}", line=opened)
        text = self.text[self.pos + 1 : end]
        self._advance(end + 1 - self.pos)
        return _Lit(text, quoted=True)

    def _double(self) -> list[_Part]:
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
    ) -> list[_Part]:
        """Parts up to a `stop` character: an unquoted word (stop not consumed, as it ends the
        word), or, when `what` names the construct, the body of "..." or of `${NAME:-word}` (stop
        required and consumed). `quotes` start nested quoting (in "${X:-'a'}", ' is literal)."""
        parts: list[_Part] = [_Lit("", quoted=True)] if what else []  # "" is a (quoted) word
        while (char := self._peek()) and char not in stop:
            if char == "\\":
                self._backslash(parts, escapable)
            elif char == "$":
                parts.append(self._dollar(in_dq=in_dq))
            elif char == "`":
                self._unsupported(_BACKTICKS)
            elif char == '"' and char in quotes:
                parts.extend(self._double())
            elif char == "'" and char in quotes:
                parts.append(self._single())
            else:
                _add(parts, char, quoted=in_dq)
                self._advance()
        if what and not char:
            self._fail(f"unterminated {what} opened at line {opened}", line=opened)
        if what:
            self._advance()
        return parts

    def _dollar(self, *, in_dq: bool) -> _Part:
        """What follows a `$` (at pos): a parameter expansion, or a literal `$`."""
        line = self.line
        self._advance()
        char = self._peek()
        if char == "(":
            arithmetic = self._peek(1) == "("
            self._unsupported(
                "arithmetic '$((...))'" if arithmetic else "command substitution '$(...)'"
            )
        if char == "[":
            self._unsupported("arithmetic '$[...]'")
        if char == "{":
            return self._braced(in_dq=in_dq)
        if char and char in "'\"" and not in_dq:
            self._unsupported(f"{char}...{char} quoting after '$'")
        if match := _NAME.match(self.text, self.pos):
            self._advance(match.end() - self.pos)
            return _Param(match.group(), "", (), line)
        if char and (char.isdigit() or char in "@*#?-$!"):
            self._unsupported(f"special parameter '${char}'")
        return _Lit("$", quoted=in_dq)

    def _braced(self, *, in_dq: bool) -> _Param:
        """`${NAME}` or `${NAME<op>word}` (pos at the `{`)."""
        opened = self.line
        self._advance()
        match = _NAME.match(self.text, self.pos)
        if not match:
            what = {"#": "length '${#...}'", "!": "indirection '${!...}'"}.get(self._peek())
            self._unsupported(what or "this parameter expansion")
        name = match.group()
        self._advance(match.end() - self.pos)
        char = self._peek()
        if char == "}":
            self._advance()
            return _Param(name, "", (), opened)
        if char == "[":
            self._unsupported("arrays")
        op = char if char in ("-", "=", "+", "?") else ""
        if char == ":" and self._peek(1) in ("-", "=", "+", "?"):
            op = ":" + self._peek(1)
        if not op:
            rest = self.text[self.pos : self.pos + 6].split("\n")[0]
            self._unsupported(f"'${{{name}{rest}...' (only ${{NAME}} and ${{NAME:-word}} forms)")
        self._advance(len(op))
        if not in_dq and self._peek() == "~":
            self._unsupported("tilde expansion (write the path out)")
        escapable = _DQ_ESCAPES + "}" if in_dq else None
        quotes = '"' if in_dq else "'\""
        word = self._until(
            "}", in_dq=in_dq, escapable=escapable, quotes=quotes, what="'${'", opened=opened
        )
        return _Param(name, op, tuple(word), opened)

    # -- evaluation -----------------------------------------------------------------------------

    def _execute(self, words: list[_Word]) -> None:
        assignments = []
        for word in words:
            if (split := _split_assignment(word)) is None:
                break
            assignments.append((split, word.line))
        if assignments and len(assignments) < len(words):  # bash: `A=1 cmd` sets A for cmd only
            self._unsupported("assignments before a command", line=words[len(assignments)].line)
        for (name, op, value), line in assignments:  # in order: `A=1 B=$A` sees the new A
            self._check_tilde(value, line)
            self._assign(name, self._expand(value), line, append=op == "+=")
        if assignments:
            return
        head, args = words[0], words[1:]
        command = self._check_head(head)
        handler = {"export": self._export, "unset": self._unset, "set": self._set}.get(command)
        if handler is not None:
            handler(args)
        elif command in _NOOP_COMMANDS:
            for arg in args:
                self._expand(arg.parts)
        else:
            self._unsupported(f"command '{command}'", line=head.line)

    def _check_head(self, head: _Word) -> str:
        """The command name of a command starting with `head`, if it may be one at all."""
        if _split_assignment(head):
            return ""
        command = _literal(head)
        if command is None:
            self._unsupported("a command name that is not a literal word", line=head.line)
        if command in _RESERVED:
            self._unsupported(f"'{command}' (control flow)", line=head.line)
        if command in ("source", "."):
            self._fail(
                f"not supported: '{command}' (other files are not followed)",
                line=head.line,
                hint="list the file in the source's `shared` setting instead",
            )
        if re.match(r"[A-Za-z_]\w*\[", command):
            self._unsupported("arrays", line=head.line)
        return command

    def _export(self, args: list[_Word]) -> None:
        """Arguments are all expanded first, then assigned (bash expands before running export)."""
        pending: list[tuple[str, str | None, bool, int]] = []
        for arg in args:
            split = _split_assignment(arg)
            if split is None:
                name = _literal(arg)
                if name is None or not _NAME.fullmatch(name):
                    self._unsupported(
                        f"export argument {name or '(with expansions)'}", line=arg.line
                    )
                pending.append((name or "", None, False, arg.line))
                continue
            name, op, value = split
            self._check_tilde(value, arg.line)
            if "{" in _shape(value):  # bash brace-expands export's arguments
                self._unsupported("brace expansion in export (quote the value)", line=arg.line)
            pending.append((name, self._expand(value), op == "+=", arg.line))
        for name, expanded, append, line in pending:
            if expanded is not None:
                self._assign(name, expanded, line, append=append)
            self.state.exported.add(name)

    def _unset(self, args: list[_Word]) -> None:
        for arg in args:
            name = _literal(arg)
            if name == "-v":
                continue
            if name is None or not _NAME.fullmatch(name):
                self._unsupported(f"unset argument {name or '(with expansions)'}", line=arg.line)
            self.state.values.pop(name or "", None)
            self.state.history.pop(name or "", None)
            self.state.exported.discard(name or "")

    def _set(self, args: list[_Word]) -> None:
        """Shell options: `-u`/`-o nounset` and `-a`/`-o allexport` matter; the rest is ignored."""
        texts = [_literal(arg) or "" for arg in args]
        for index, text in enumerate(texts):
            before = texts[index - 1] if index else ""
            if text in ("-o", "+o"):
                continue
            if before in ("-o", "+o") and re.fullmatch(r"[a-z]+", text):
                flags, on = {"nounset": "u", "allexport": "a"}.get(text, ""), before == "-o"
            elif re.fullmatch(r"[-+][A-Za-z]+", text):
                flags, on = text[1:], text[0] == "-"
            else:
                self._unsupported("positional parameters ('set' arguments)", line=args[index].line)
            if "u" in flags:
                self.state.nounset = on
            if "a" in flags:
                self.state.allexport = on

    def _check_tilde(self, value: list[_Part], line: int) -> None:
        shape = _shape(value)
        if shape.startswith("~") or ":~" in shape:
            self._unsupported("tilde expansion (write the path out)", line=line)

    def _assign(self, name: str, value: str, line: int, *, append: bool = False) -> None:
        state = self.state
        state.values[name] = state.values.get(name, "") + value if append else value
        state.history.setdefault(name, []).append((self.path, line))
        if state.allexport:
            state.exported.add(name)

    def _expand(self, parts: Sequence[_Part]) -> str:
        return "".join(p.text if isinstance(p, _Lit) else self._parameter(p) for p in parts)

    def _parameter(self, param: _Param) -> str:
        value = self.state.values.get(param.name)
        if not param.op:
            if value is None and self.state.nounset:
                self._fail(f"{param.name}: unbound variable (set -u is on)", line=param.line)
            return value or ""
        missing = value is None or (param.op.startswith(":") and value == "")
        kind = param.op[-1]
        if kind == "+":
            return "" if missing else self._expand(param.word)
        if not missing:
            return value or ""
        if kind == "?":
            message = self._expand(param.word) or "parameter null or not set"
            self._fail(f"{param.name}: {message}", line=param.line)
        default = self._expand(param.word)
        if kind == "=":
            self._assign(param.name, default, param.line)
        return default


def _add(parts: list[_Part], text: str, *, quoted: bool) -> None:
    """Append literal text, merging with a preceding literal of the same quoting."""
    last = parts[-1] if parts else None
    if isinstance(last, _Lit) and last.quoted == quoted:
        parts[-1] = _Lit(last.text + text, quoted)
    else:
        parts.append(_Lit(text, quoted))


def _shape(parts: Sequence[_Part]) -> str:
    """Unquoted literal text kept, everything else masked: for syntax checks on a word."""
    return "".join(p.text if isinstance(p, _Lit) and not p.quoted else "\0" for p in parts)


def _literal(word: _Word) -> str | None:
    """The word's text when it has no expansions (quotes allowed), else None."""
    if any(isinstance(p, _Param) for p in word.parts):
        return None
    return "".join(p.text for p in word.parts if isinstance(p, _Lit))


def _split_assignment(word: _Word) -> tuple[str, str, list[_Part]] | None:
    """(name, "=" or "+=", value parts) when the word is an assignment, as bash decides it:
    the name and `=` must be unquoted literal text at the start of the word."""
    first = word.parts[0] if word.parts else None
    if not isinstance(first, _Lit) or first.quoted:
        return None
    match = _ASSIGNMENT.fullmatch(first.text)
    if not match:
        return None
    name, op, rest = match.groups()
    value: list[_Part] = [_Lit(rest, quoted=False)] if rest else []
    return name, op, value + word.parts[1:]
