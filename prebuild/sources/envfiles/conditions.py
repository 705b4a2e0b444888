"""`test` / `[ ... ]` and `[[ ... ]]`: a known result (True/False) or None (unknown).

Only what is exact is computed: string (in)equality, -n/-z, -v, integer comparisons of
decimal integers, `[[ == ]]` patterns made of `*`, `?` and literal ASCII text. File tests,
locale-dependent ordering, regexes and bracket/extended patterns are unknown.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from prebuild.sources.envfiles import arith
from prebuild.sources.envfiles.syntax import TestExpr
from prebuild.sources.envfiles.tokens import Arith, Lit, Param, Part, Word
from prebuild.sources.envfiles.values import Unknown

if TYPE_CHECKING:
    from prebuild.sources.envfiles.expand import Expander

_INT = re.compile(r"-?[0-9]+")
_INT_OPS = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__}
_INT_OPS |= {"-gt": int.__gt__, "-ge": int.__ge__}
_UNARY_FILE = set("abcdefghkprstuwxGLNOS")


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def test_args(shell: Expander, args: list[str]) -> bool | None:
    """POSIX `test` with up to four arguments (bash's rules by argument count)."""
    count = len(args)
    if count == 0:
        return False
    if count == 1:
        return args[0] != ""
    if count == 2:
        if args[0] == "!":
            return args[1] == ""
        return _unary(shell, args[0], args[1])
    if count == 3:
        if args[1] in ("=", "==", "!=") or args[1] in _INT_OPS:
            return _binary(args[1], args[0], args[2])
        if args[0] == "!":
            return _not(test_args(shell, args[1:]))
        if args[0] == "(" and args[2] == ")":
            return args[1] != ""
        return None
    if count == 4:
        if args[0] == "!":
            return _not(test_args(shell, args[1:]))
        if args[0] == "(" and args[3] == ")":
            return test_args(shell, args[1:3])
    return None


def _unary(shell: Expander, op: str, operand: str) -> bool | None:
    if op == "-n":
        return operand != ""
    if op == "-z":
        return operand == ""
    if op == "-v" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", operand):
        value = shell.state.get(operand, shell.cause(0, "-v"))
        return None if isinstance(value, Unknown) else value is not None
    return None  # file tests, -o, -t ...: the CI machine decides


def _binary(op: str, left: str, right: str) -> bool | None:
    if op in ("=", "=="):
        return left == right
    if op == "!=":
        return left != right
    if _INT.fullmatch(left) and _INT.fullmatch(right):
        return _INT_OPS[op](int(left), int(right))
    return None


def dbracket(shell: Expander, expr: TestExpr) -> bool | None:
    """`[[ ... ]]`: no splitting, no pathname expansion; && and || short-circuit."""
    op = expr.op
    if op == "!":
        return _not(dbracket(shell, expr.args[0]))  # type: ignore[arg-type]
    if op in ("&&", "||"):
        left = dbracket(shell, expr.args[0])  # type: ignore[arg-type]
        right_expr = expr.args[1]
        assert isinstance(right_expr, TestExpr)
        if left is None:
            _maybe(shell, right_expr)
            return None
        if left == (op == "||"):
            return left
        return dbracket(shell, right_expr)
    words = [a for a in expr.args if isinstance(a, Word)]
    if op == "=~":
        shell.value(words[0].parts)
        return None
    if op == "word":
        value = shell.value(words[0].parts)
        return None if isinstance(value, Unknown) else value != ""
    if len(words) == 1:
        value = shell.value(words[0].parts)
        return None if isinstance(value, Unknown) else _unary(shell, op, value)
    subject = shell.value(words[0].parts)
    if op in _INT_OPS:
        right = shell.value(words[1].parts)
        return _arith_compare(shell, op, subject, right, expr.line)
    if op in ("==", "=", "!="):
        pattern = _pattern(shell, words[1].parts)
        if isinstance(subject, Unknown) or pattern is None or not subject.isascii():
            return None
        matched = pattern.fullmatch(subject) is not None
        return matched if op != "!=" else not matched
    shell.value(words[1].parts)
    return None  # < > (locale collation), -nt -ot -ef (files)


def _arith_compare(shell: Expander, op: str, left: object, right: object, line: int) -> bool | None:
    values = []
    for side in (left, right):
        if isinstance(side, Unknown):
            shell.state.poisoned(shell.cause(line, "arithmetic comparison of an unknown value"))
            return None
        lookup = lambda name: shell.state.get(name, shell.cause(line, "arithmetic"))  # noqa: E731
        result = arith.evaluate(str(side), lookup)
        if result == arith.ASSIGNS:
            shell.state.poisoned(shell.cause(line, "arithmetic that can assign variables"))
            return None
        if result is None:
            return None
        values.append(int(result))
    return _INT_OPS[op](values[0], values[1])


def _pattern(shell: Expander, parts: list[Part]) -> re.Pattern[str] | None:
    """The right side of `[[ == ]]` as a regex: quoted text literal, unquoted * and ?."""
    out: list[str] = []
    for part in parts:
        quoted = part.quoted if isinstance(part, Lit | Param | Arith) else True
        value = shell.part(part)
        if isinstance(value, Unknown) or not value.isascii():
            return None
        if quoted:
            out.append(re.escape(value))
            continue
        if "[" in value or re.search(r"[?*+@!]\(", value) or "\\" in value:
            return None
        out.append("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value))
    return re.compile("".join(out), re.DOTALL)


def _maybe(shell: Expander, expr: TestExpr) -> None:
    """A sub-expression that may or may not be evaluated: its assignments become unknown."""
    for arg in expr.args:
        if isinstance(arg, TestExpr):
            _maybe(shell, arg)
        else:
            shell.maybe_assigned(arg.parts, shell.cause(expr.line, "'[[ ]]' that may not run"))
