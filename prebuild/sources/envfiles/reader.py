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
from prebuild.pathnames import relative_or_absolute
from prebuild.sources.envfiles.tokens import (
    NAME,
    Lexer,
    Lit,
    Param,
    Part,
    Word,
    literal,
    shape_of,
    split_assignment,
)

_NOOP_COMMANDS = {":", "true", "echo"}


@dataclass(frozen=True)
class EnvResult:
    """Variables after reading: `values` (exported or not), where each was last set (`lines`),
    every place it was set in order (`history`, to blame a job file over a shared default that
    merely re-assigned its value), and which are exported."""

    values: dict[str, str]
    lines: dict[str, tuple[Path, int]]
    exported: frozenset[str]
    history: dict[str, tuple[tuple[Path, int], ...]] = field(default_factory=dict)


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
        shown = str(path) if root is None else relative_or_absolute(path.resolve(), root.resolve())
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


@dataclass
class _State:
    """Shell state shared by all files of one read (they are sourced into the same shell)."""

    values: dict[str, str]
    history: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)
    nounset: bool = False
    allexport: bool = False


class _Reader:
    """Evaluates one file command by command, each before the next is tokenized (as bash does)."""

    def __init__(self, text: str, path: Path, shown: str, state: _State) -> None:
        self.lexer = Lexer(text, shown)
        self.path, self.state = path, state

    def _fail(self, message: str, *, line: int) -> NoReturn:
        self.lexer.fail(message, line=line)

    def _unsupported(self, what: str, *, line: int | None = None) -> NoReturn:
        self.lexer.unsupported(what, line=line)

    def run(self) -> None:
        while (words := self.lexer.command()) is not None:
            if words:
                self._execute(words)

    def _execute(self, words: list[Word]) -> None:
        assignments = []
        for word in words:
            if (split := split_assignment(word)) is None:
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
        command = self.lexer.check_head(head)
        handler = {"export": self._export, "unset": self._unset, "set": self._set}.get(command)
        if handler is not None:
            handler(args)
        elif command in _NOOP_COMMANDS:
            for arg in args:
                self._expand(arg.parts)
        else:
            self._unsupported(f"command '{command}'", line=head.line)

    def _export(self, args: list[Word]) -> None:
        """Arguments are all expanded first, then assigned (bash expands before running export)."""
        pending: list[tuple[str, str | None, bool, int]] = []
        for arg in args:
            split = split_assignment(arg)
            if split is None:
                name = literal(arg)
                if name is None or not NAME.fullmatch(name):
                    self._unsupported(
                        f"export argument {name or '(with expansions)'}", line=arg.line
                    )
                pending.append((name or "", None, False, arg.line))
                continue
            name, op, value = split
            self._check_tilde(value, arg.line)
            if "{" in shape_of(value):  # bash brace-expands export's arguments
                self._unsupported("brace expansion in export (quote the value)", line=arg.line)
            pending.append((name, self._expand(value), op == "+=", arg.line))
        for name, expanded, append, line in pending:
            if expanded is not None:
                self._assign(name, expanded, line, append=append)
            self.state.exported.add(name)

    def _unset(self, args: list[Word]) -> None:
        for arg in args:
            name = literal(arg)
            if name == "-v":
                continue
            if name is None or not NAME.fullmatch(name):
                self._unsupported(f"unset argument {name or '(with expansions)'}", line=arg.line)
            self.state.values.pop(name or "", None)
            self.state.history.pop(name or "", None)
            self.state.exported.discard(name or "")

    def _set(self, args: list[Word]) -> None:
        """Shell options: `-u`/`-o nounset` and `-a`/`-o allexport` matter; the rest is ignored."""
        texts = [literal(arg) or "" for arg in args]
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

    def _check_tilde(self, value: list[Part], line: int) -> None:
        shape = shape_of(value)
        if shape.startswith("~") or ":~" in shape:
            self._unsupported("tilde expansion (write the path out)", line=line)

    def _assign(self, name: str, value: str, line: int, *, append: bool = False) -> None:
        state = self.state
        state.values[name] = state.values.get(name, "") + value if append else value
        state.history.setdefault(name, []).append((self.path, line))
        if state.allexport:
            state.exported.add(name)

    def _expand(self, parts: Sequence[Part]) -> str:
        return "".join(p.text if isinstance(p, Lit) else self._parameter(p) for p in parts)

    def _parameter(self, param: Param) -> str:
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
