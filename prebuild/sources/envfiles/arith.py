"""`$((...))` over known operands, with bash's 64-bit integer semantics.

Only what can be computed exactly and without side effects is: decimal literals, variables
whose values are decimal integers (or empty/unset: 0), + - * / % and ** , comparisons, ! && ||,
parentheses. An expression that could assign (=, +=, ++, --, or a variable whose value is
itself an expression, which bash would evaluate recursively) returns `ASSIGNS`: the caller
must stop trusting every variable. Anything else returns None (the value is unknown).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prebuild.sources.envfiles.values import MAX_NESTING

ASSIGNS = "assigns"
_TOKEN = re.compile(
    r"\s*(?:(0|[1-9][0-9]*)|([A-Za-z_][A-Za-z0-9_]*)|(\*\*|<=|>=|==|!=|&&|\|\||[-+*/%()<>!]))"
)
_ASSIGNING = re.compile(r"\+\+|--|(?<![=!<>])=(?!=)|[-+*/%&|^]=|<<=|>>=")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_BINARY = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, ">": 4, "<=": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "**": 7,
}  # fmt: skip


def _wrap(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


class _Unknown(Exception):
    """The expression's value cannot be computed (args[0] may be ASSIGNS)."""


def evaluate(text: str, lookup: Callable[[str], str | None | object]) -> int | str | None:
    """The integer value, ASSIGNS, or None. `lookup(name)` gives a str, None (unset) or any
    other object for an unknown value."""
    if _ASSIGNING.search(text):
        return ASSIGNS
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            return None
        tokens.append(match.group(match.lastindex or 0))
        pos = match.end()
    if not tokens:
        return 0
    try:
        value, rest = _expression(tokens, 0, 1, lookup, 0)
    except _Unknown as unknown:
        return ASSIGNS if unknown.args and unknown.args[0] == ASSIGNS else None
    except (ZeroDivisionError, OverflowError):
        return ASSIGNS  # bash aborts the command: treat like losing track
    return value if rest == len(tokens) else None


def _expression(
    tokens: list[str], pos: int, min_prec: int, lookup: Callable, depth: int
) -> tuple[int, int]:
    if depth > MAX_NESTING:
        raise _Unknown()
    left, pos = _unary(tokens, pos, lookup, depth)
    while pos < len(tokens) and tokens[pos] in _BINARY and _BINARY[tokens[pos]] >= min_prec:
        op = tokens[pos]
        prec = _BINARY[op]
        right, pos = _expression(
            tokens, pos + 1, prec if op == "**" else prec + 1, lookup, depth + 1
        )
        left = _apply(op, left, right)
    return left, pos


def _apply(op: str, left: int, right: int) -> int:
    if op in ("/", "%"):
        if right == 0:
            raise ZeroDivisionError
        quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)
        return _wrap(quotient if op == "/" else left - right * quotient)
    if op == "**":
        if right < 0 or right > 4096:
            raise _Unknown()
        return _wrap(pow(left, right, 1 << 64))
    results = {
        "+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
        "==": lambda: int(left == right), "!=": lambda: int(left != right),
        "<": lambda: int(left < right), ">": lambda: int(left > right),
        "<=": lambda: int(left <= right), ">=": lambda: int(left >= right),
        "&&": lambda: int(bool(left) and bool(right)), "||": lambda: int(bool(left) or bool(right)),
    }  # fmt: skip
    return _wrap(results[op]())


def _unary(tokens: list[str], pos: int, lookup: Callable, depth: int) -> tuple[int, int]:
    if pos >= len(tokens):
        raise _Unknown()
    token = tokens[pos]
    if token in ("-", "+", "!"):
        value, pos = _unary(tokens, pos + 1, lookup, depth + 1)
        return (_wrap(-value) if token == "-" else value if token == "+" else int(not value)), pos
    if token == "(":
        value, pos = _expression(tokens, pos + 1, 1, lookup, depth + 1)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise _Unknown()
        return value, pos + 1
    if token.isdigit():
        return _wrap(int(token)), pos + 1
    if token[0].isalpha() or token[0] == "_":
        value = lookup(token)
        if value is None or value == "":
            return 0, pos + 1
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return _wrap(int(value)), pos + 1
        raise _Unknown(ASSIGNS)  # bash would evaluate the value as an expression
    raise _Unknown()
