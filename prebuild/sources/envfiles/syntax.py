"""The syntax tree of an env file, as bash's grammar builds it (the nodes the reader needs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prebuild.sources.envfiles.tokens import Part, Redir, Word


@dataclass
class Assign:
    """`NAME=value` / `NAME+=value`; `array` for `NAME=(...)` and `NAME[i]=...`."""

    name: str
    append: bool
    value: list[Part]
    line: int
    array: bool = False


@dataclass
class Simple:
    assigns: list[Assign]
    words: list[Word]
    redirs: list[Redir]
    line: int


@dataclass
class Pipeline:
    commands: list[Node]
    negated: bool
    line: int


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]]  # ("&&" | "||", pipeline)


@dataclass
class Seq:
    items: list[tuple[AndOr, bool]] = field(default_factory=list)  # (list, run in background)


@dataclass
class If:
    clauses: list[tuple[Seq, Seq]]
    orelse: Seq | None
    line: int


@dataclass
class Loop:
    kind: str  # for, select, while, until, arith-for
    var: str | None
    words: list[Word] | None
    cond: Seq | None
    body: Seq
    line: int


@dataclass
class Case:
    word: Word
    arms: list[tuple[list[Word], Seq, str]]
    line: int


@dataclass
class Group:
    body: Seq
    subshell: bool
    line: int


@dataclass
class FuncDef:
    name: str
    body: Node
    line: int


@dataclass
class TestExpr:
    """One node of a `[[ ... ]]` expression: op "!", "&&", "||", a unary (-n ...) or binary
    (== ...) operator, "word" (one operand) or "=~" (regex: never computed)."""

    op: str
    args: list[TestExpr | Word]
    line: int


@dataclass
class DBracket:
    expr: TestExpr
    line: int


@dataclass
class ArithCmd:
    parts: list[Part]
    line: int


@dataclass
class Redirected:
    """A compound command with redirections after it."""

    node: Node
    redirs: list[Redir]


Node = (
    Simple
    | Pipeline
    | AndOr
    | Seq
    | If
    | Loop
    | Case
    | Group
    | FuncDef
    | DBracket
    | ArithCmd
    | Redirected
)
