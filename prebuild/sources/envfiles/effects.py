"""What a piece of code *can* do, without running it: for loop bodies and function calls,
whose variables become unknown rather than being evaluated.

`collect` returns the names the code may assign, or raises `Untraceable` when it may do
something the reader cannot bound (eval, source, dynamic names, arithmetic assignments...).
"""

from __future__ import annotations

import re

from prebuild.sources.envfiles.dbracket import literal
from prebuild.sources.envfiles.syntax import (
    AndOr,
    ArithCmd,
    Case,
    DBracket,
    FuncDef,
    Group,
    If,
    Loop,
    Node,
    Pipeline,
    Redirected,
    Seq,
    Simple,
    TestExpr,
)
from prebuild.sources.envfiles.tokens import NAME, Arith, Lit, Param, Part, Word
from prebuild.sources.envfiles.values import word_list

# Builtins that change no variable and nothing else the reader tracks.
HARMLESS = frozenset(
    word_list(
        """
        : true false echo printf test [ pwd type hash help times umask ulimit wait jobs kill
        disown suspend caller dirs history fc bind complete compgen compopt logout shift break
        continue alias unalias
        """
    )
)
_DECLARE = {"export", "declare", "typeset", "local", "readonly"}
_OPTION_ARGS = {"read": "adinNptu", "mapfile": "dnOsuCc", "readarray": "dnOsuCc"}


class Untraceable(Exception):
    """The code may do something whose effects cannot be listed (args[0]: what)."""


def collect(
    node: Node, functions: dict[str, list[Node]], seen: frozenset[str] = frozenset()
) -> set[str]:
    names: set[str] = set()
    _node(node, functions, seen, names)
    return names


def _node(
    node: Node, functions: dict[str, list[Node]], seen: frozenset[str], out: set[str]
) -> None:
    if isinstance(node, Seq):
        for andor, _ in node.items:
            _node(andor, functions, seen, out)
    elif isinstance(node, AndOr):
        _node(node.first, functions, seen, out)
        for _, pipeline in node.rest:
            _node(pipeline, functions, seen, out)
    elif isinstance(node, Pipeline):
        if len(node.commands) == 1:  # longer pipelines run in subshells
            _node(node.commands[0], functions, seen, out)
    elif isinstance(node, Redirected):
        _node(node.node, functions, seen, out)
    elif isinstance(node, If):
        for cond, body in node.clauses:
            _node(cond, functions, seen, out)
            _node(body, functions, seen, out)
        if node.orelse is not None:
            _node(node.orelse, functions, seen, out)
    elif isinstance(node, Loop):
        if node.var:
            out.add(node.var)
        for word in node.words or []:
            _parts(word.parts, out)
        if node.kind == "arith-for":
            raise Untraceable("arithmetic 'for ((...))'")
        if node.cond is not None:
            _node(node.cond, functions, seen, out)
        _node(node.body, functions, seen, out)
    elif isinstance(node, Case):
        _parts(node.word.parts, out)
        for patterns, body, _ in node.arms:
            for pattern in patterns:
                _parts(pattern.parts, out)
            _node(body, functions, seen, out)
    elif isinstance(node, Group):
        if not node.subshell:
            _node(node.body, functions, seen, out)
    elif isinstance(node, FuncDef):
        raise Untraceable(f"function '{node.name}' defined where it may not run")
    elif isinstance(node, DBracket):
        _test(node.expr, out)
    elif isinstance(node, ArithCmd):
        raise Untraceable("arithmetic command '((...))'")
    elif isinstance(node, Simple):
        _simple(node, functions, seen, out)


def _test(expr: TestExpr, out: set[str]) -> None:
    for arg in expr.args:
        if isinstance(arg, TestExpr):
            _test(arg, out)
        else:
            _parts(arg.parts, out)
    if expr.op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
        raise Untraceable("arithmetic comparison in '[[ ]]'")


def _parts(parts: list[Part] | tuple[Part, ...], out: set[str]) -> None:
    for part in parts:
        if isinstance(part, Param):
            if part.op.endswith("=") and NAME.fullmatch(part.name):
                out.add(part.name)
            _parts(part.word, out)
        elif isinstance(part, Arith):
            _parts(part.parts, out)
            text = "".join(p.text for p in part.parts if isinstance(p, Lit))
            if any(not isinstance(p, Lit) for p in part.parts) or re.search(r"[A-Za-z_=]", text):
                raise Untraceable("arithmetic '$((...))' over variables")


def _simple(
    node: Simple, functions: dict[str, list[Node]], seen: frozenset[str], out: set[str]
) -> None:
    for assign in node.assigns:
        out.add(assign.name)
        _parts(assign.value, out)
    for word in node.words:
        _parts(word.parts, out)
    if not node.words:
        return
    name = literal(node.words[0]) or _quoted_literal(node.words[0])
    if name is None:
        raise Untraceable("a command name computed at run time")
    args = [literal(w) or _quoted_literal(w) for w in node.words[1:]]
    if name in ("command", "builtin") and args and args[0] not in ("-v", "-V", None):
        name, args = args[0] or "", args[1:]
    if name in functions and name not in seen:
        for body in functions[name]:
            _node(body, functions, seen | {name}, out)
        return
    if name in HARMLESS or name in ("command", "builtin"):
        if name == "printf" and any(a is not None and a.startswith("-v") for a in args):
            _printf_v(args, out)
        return
    if name in ("cd", "pushd", "popd"):
        raise Untraceable(f"'{name}' changes the directory later paths are relative to")
    if name in _DECLARE or name == "unset":
        flagged = any(a and a[0] in "-+" and set(a[1:]) - {"x", "g"} for a in args)
        if (name == "readonly" or flagged) and name not in ("unset", "export"):
            raise Untraceable(f"'{name}' with attributes")
        for word, arg in zip(node.words[1:], args, strict=True):
            text = arg if arg is not None else _assignment_name(word)
            if text is None:
                raise Untraceable(f"'{name}' with an argument computed at run time")
            if not text.startswith(("-", "+")):
                out.add(text.split("=", 1)[0].removesuffix("+"))
        return
    if name in _OPTION_ARGS or name == "getopts":
        _reads(name, args, out)
        return
    if name == "set" and all(a is not None and _harmless_set(a) for a in args):
        return
    if name == "eval" and all(a is not None for a in args):
        from prebuild.sources.envfiles.parser import parse

        try:
            tree = parse(" ".join(a or "" for a in args), "eval")
        except Exception:  # noqa: BLE001 - any unreadable text: cannot bound it
            raise Untraceable("'eval' of unreadable text") from None
        _node(tree, functions, seen, out)
        return
    if name in (
        "set",
        "shopt",
        "eval",
        "source",
        ".",
        "exec",
        "trap",
        "enable",
        "let",
        "exit",
        "return",
    ):
        raise Untraceable(f"'{name}'")
    # any other command is external: it cannot change the shell's variables


def _harmless_set(arg: str) -> bool:
    """`set` arguments that change no option the reader tracks (and no positional mode)."""
    if arg in ("pipefail", "xtrace", "verbose", "noclobber", "noglob", "notify", "errtrace"):
        return True
    return bool(re.fullmatch(r"[-+][xvCfmbhBEHPTo]+", arg)) and arg not in ("-", "+")


def _printf_v(args: list[str | None], out: set[str]) -> None:
    for index, arg in enumerate(args):
        if arg == "-v" and index + 1 < len(args) and args[index + 1]:
            out.add(args[index + 1] or "")
        elif arg and arg.startswith("-v") and len(arg) > 2:
            out.add(arg[2:])


def _reads(name: str, args: list[str | None], out: set[str]) -> None:
    if name == "getopts":
        out.update({"OPTARG", "OPTIND"})
        if len(args) >= 2 and args[1]:
            out.add(args[1])
            return
        raise Untraceable("'getopts' with a computed name")
    out.update(read_targets(name, args))


def read_targets(name: str, args: list[str | None]) -> list[str]:
    """The variables `read`/`mapfile`/`readarray` assign, from their arguments."""
    with_arg = _OPTION_ARGS[name]
    targets: list[str] = []
    index, options = 0, True
    while index < len(args):
        arg = args[index]
        index += 1
        if arg is None:
            raise Untraceable(f"'{name}' with an argument computed at run time")
        if options and arg == "--":
            options = False
        elif options and arg.startswith("-") and len(arg) > 1:
            for position, letter in enumerate(arg[1:], start=2):
                if letter in with_arg:
                    value = arg[position:] or (args[index] if index < len(args) else None)
                    index += 0 if arg[position:] else 1
                    if letter == "a" and name == "read":
                        if value is None:
                            raise Untraceable("'read -a' with a computed name")
                        targets.append(value)
                    break
        else:
            options = False
            targets.append(arg)
    if not targets:
        targets = ["REPLY"] if name == "read" else ["MAPFILE"]
    return targets if name == "read" else targets[:1]


def _quoted_literal(word: Word) -> str | None:
    from prebuild.sources.envfiles.tokens import Lit

    if all(isinstance(p, Lit) for p in word.parts):
        return "".join(p.text for p in word.parts)  # type: ignore[union-attr]
    return None


def _assignment_name(word: Word) -> str | None:
    from prebuild.sources.envfiles.tokens import Lit

    first = word.parts[0] if word.parts else None
    if isinstance(first, Lit) and not first.quoted and "=" in first.text:
        name = first.text.split("=", 1)[0].removesuffix("+")
        return name if NAME.fullmatch(name) else None
    return None
