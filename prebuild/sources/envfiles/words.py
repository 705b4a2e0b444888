"""The tokens of an env file: words (literal text and expansions), operators, redirections."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lit:
    """Literal text; `quoted` text is exempt from splitting, globbing, tilde and syntax."""

    text: str
    quoted: bool


@dataclass(frozen=True)
class Param:
    """`$NAME`, `${NAME}`, `${NAME<op>word}`; op "" plain, one of - = + ? (maybe with ':'),
    "len" (${#NAME}), "ind" (${!NAME}), "other" (any other operator: value unknown, the word
    kept for its side effects). `name` may be a special parameter (?, 1, @ ...)."""

    name: str
    op: str
    word: tuple[Part, ...]
    line: int
    quoted: bool


@dataclass(frozen=True)
class CmdSub:
    """`$(...)` or backticks (body parsed): runs in a subshell, its value is unknown."""

    body: object
    line: int
    quoted: bool
    backticks: bool = False


@dataclass(frozen=True)
class Arith:
    """`$((...))`: the expression's parts (expanded first, then evaluated)."""

    parts: tuple[Part, ...]
    line: int
    quoted: bool


@dataclass(frozen=True)
class Opaque:
    """Text whose value the reader does not compute (e.g. `$'...'`)."""

    what: str
    line: int
    quoted: bool


Part = Lit | Param | CmdSub | Arith | Opaque


@dataclass
class Word:
    parts: list[Part]
    line: int


@dataclass(frozen=True)
class Op:
    text: str
    line: int


@dataclass(frozen=True)
class Redir:
    op: str
    target: Word
    line: int


Token = Word | Op | Redir
