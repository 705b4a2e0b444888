"""Refuse configs nested deeper than any real one: tomllib, pydantic and the line locator all
recurse, and a hostile or generated file 500 levels deep must be a located error, not a
RecursionError traceback."""

from __future__ import annotations

import re
from typing import Any

from prebuild.errors import ConfigError

MAX_DEPTH = 32  # the schema itself nests 4 levels (image.cache.s3.*)

# Strings and comments are skipped so brackets inside them do not count.
_TOKEN = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}]|\n',
    re.DOTALL,
)


def check(text: str, data: Any | None, display: str) -> None:
    """Raise a located ConfigError when `data` (None: tomllib gave up) nests too deeply."""
    path = None
    if data is not None:
        path = deep_path(data, MAX_DEPTH)
        if path is None:
            return
    line = bracket_line(text, MAX_DEPTH)
    if line is None and path:
        line = _key_line(text, str(path[0]))
    key = _key(path[:3]) + ("…" if len(path) > 3 else "") if path else None
    raise ConfigError(
        f"nested deeper than {MAX_DEPTH} levels (arrays, tables or dotted keys)",
        file=display,
        line=line,
        key=key,
    )


def deep_path(data: Any, limit: int) -> list[str | int] | None:
    """The key path to the first value nested deeper than `limit`, found without recursion."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            return path
        if isinstance(value, dict):
            stack += [(v, [*path, k]) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, [*path, i]) for i, v in enumerate(value)]
    return None


def bracket_line(text: str, limit: int) -> int | None:
    """The line where `[`/`{` nesting first exceeds `limit` (table headers never nest)."""
    depth, line = 0, 1
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > limit:
                return line
        elif token == "]" or token == "}":
            depth = max(depth - 1, 0)
        else:
            line += token.count("\n")
    return None


def _key_line(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*\[*\s*[\"']?{re.escape(key)}[\"']?\s*[.=\]]", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _key(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
