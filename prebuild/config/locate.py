"""Map a key path like ('image', 2, 'platforms', 0) to the line of the TOML text that wrote it.

tomllib keeps no positions, so config errors would otherwise only say *what* is wrong. This is a
small position-recording TOML scanner: it tracks `[table]` / `[[array]]` headers (with per-array
counters), dotted keys, inline tables and arrays. It runs only on text tomllib already accepted,
is lenient, and never raises: anything it cannot follow falls back to the enclosing header line.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from prebuild.errors import ConfigError
from prebuild.model import Origin

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One config error before it is located: by key path in the config file (`loc`), by the
    Origin a source gave its image (plus a key suffix), or already a located ConfigError."""

    message: str
    loc: Loc | None = None
    line_loc: Loc | None = None  # where the line comes from when not `loc` (e.g. [defaults])
    origin: Origin | None = None
    suffix: str = ""  # appended to origin.key
    error: ConfigError | None = None


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPE = re.compile(r"\\(.)")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?")


class TomlLocator:
    """Line numbers (1-based) for every key, array element and table header in a TOML text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[Loc, int] = {}
        self._pos = 0
        self._line = 1
        self._array_index: dict[Loc, int] = {}  # resolved [[array]] path -> current index
        with contextlib.suppress(IndexError, ValueError):  # malformed: keep what was found
            self._scan()

    def line_of(self, loc: Loc) -> int | None:
        """Line of `loc`, or of its nearest recorded ancestor (None when nothing matches)."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    # -- scanner ------------------------------------------------------------------------------

    def _peek(self, size: int = 1) -> str:
        return self.text[self._pos : self._pos + size]

    def _advance(self, size: int = 1) -> None:
        chunk = self.text[self._pos : self._pos + size]
        self._line += chunk.count("\n")
        self._pos += len(chunk)

    def _skip_spaces(self) -> None:
        while self._peek() in (" ", "\t") and self._peek():
            self._pos += 1

    def _skip_blank(self) -> None:
        """Spaces, newlines and comments."""
        while self._pos < len(self.text):
            char = self.text[self._pos]
            if char in " \t\r\n":
                self._advance()
            elif char == "#":
                end = self.text.find("\n", self._pos)
                self._pos = len(self.text) if end < 0 else end
            else:
                return

    def _record(self, path: Loc, line: int) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def _scan(self) -> None:
        table: Loc = ()
        while True:
            self._skip_blank()
            if self._pos >= len(self.text):
                return
            start = self._pos
            line = self._line
            if self._peek(2) == "[[":
                self._advance(2)
                parts = self._key()
                key = (*self._resolve(parts[:-1]), parts[-1])
                index = self._array_index.get(key, -1) + 1
                self._array_index[key] = index
                # a new element resets the counters of arrays nested in the previous one
                for nested in [k for k in self._array_index if k[: len(key)] == key and k != key]:
                    del self._array_index[nested]
                table = (*key, index)
                self._record(table, line)
                self._skip_line()
            elif self._peek() == "[":
                self._advance()
                table = self._resolve(self._key())
                self._record(table, line)
                self._skip_line()
            else:
                key = self._key()
                self._skip_spaces()
                if self._peek() != "=":
                    self._skip_line()
                else:
                    self._advance()
                    self._record((*table, *key), line)
                    self._value((*table, *key))
            if self._pos == start:  # no progress: give up on this line
                self._skip_line()

    def _skip_line(self) -> None:
        end = self.text.find("\n", self._pos)
        self._pos = len(self.text) if end < 0 else end

    def _resolve(self, key: tuple[str, ...]) -> Loc:
        """Insert current [[array]] indexes: `[image.cache]` after `[[image]]` -> image.N.cache."""
        resolved: Loc = ()
        for part in key:
            resolved = (*resolved, part)
            if resolved in self._array_index:
                resolved = (*resolved, self._array_index[resolved])
        return resolved

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_spaces()
            char = self._peek()
            if char == '"':
                parts.append(_ESCAPE.sub(r"\1", self._basic_string()[1:-1]))
            elif char == "'":
                parts.append(self._literal_string()[1:-1])
            else:
                match = _BARE_KEY.match(self.text, self._pos)
                if not match:
                    raise ValueError("expected a key")
                parts.append(match.group())
                self._pos = match.end()
            self._skip_spaces()
            if self._peek() != ".":
                return tuple(parts)
            self._advance()

    def _basic_string(self) -> str:
        start = self._pos
        self._advance()
        while self._peek() not in ('"', "\n", ""):
            self._advance(2 if self._peek() == "\\" else 1)
        self._advance()
        return self.text[start : self._pos]

    def _literal_string(self) -> str:
        start = self._pos
        end = self.text.find("'", self._pos + 1)
        self._advance((len(self.text) if end < 0 else end + 1) - self._pos)
        return self.text[start : self._pos]

    def _multiline_string(self, quote: str) -> None:
        self._advance(3)
        while self._pos < len(self.text):
            if quote == '"' and self._peek() == "\\":
                self._advance(2)
            elif self._peek(3) == quote * 3:
                self._advance(3)
                while self._peek() == quote:  # up to two quotes may end the content
                    self._advance()
                return
            else:
                self._advance()

    def _value(self, path: Loc) -> None:
        self._skip_spaces()
        char = self._peek()
        if self._peek(3) in ('"""', "'''"):
            self._multiline_string(char)
        elif char == '"':
            self._basic_string()
        elif char == "'":
            self._literal_string()
        elif char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        else:
            while self._peek() not in (",", "]", "}", "#", "\n", ""):
                self._advance()

    def _array(self, path: Loc) -> None:
        self._advance()
        index = 0
        while True:
            self._skip_blank()
            if self._peek() in ("]", ""):
                self._advance()
                return
            before = self._pos
            self._record((*path, index), self._line)
            self._value((*path, index))
            self._skip_blank()
            if self._peek() == ",":
                self._advance()
            elif self._pos == before:
                raise ValueError("stuck in array")
            index += 1

    def _inline_table(self, path: Loc) -> None:
        self._advance()
        while True:
            self._skip_blank()
            if self._peek() in ("}", ""):
                self._advance()
                return
            line = self._line
            key = self._key()
            self._skip_spaces()
            if self._peek() != "=":
                raise ValueError("expected '=' in inline table")
            self._advance()
            self._record((*path, *key), line)
            self._value((*path, *key))
            self._skip_blank()
            if self._peek() == ",":
                self._advance()


def header_before(text: str, line: int) -> str | None:
    """The last `[table]` / `[[array]]` header above `line`, for locating TOML syntax errors."""
    found: str | None = None
    counters: dict[str, int] = {}
    in_multiline: str | None = None  # the quote of a multi-line string spanning this line
    for number, content in enumerate(text.splitlines(), start=1):
        if number > line:
            break
        starts_inside = in_multiline is not None
        for quote in re.findall(r'"""|\'\'\'', content):
            if in_multiline is None:
                in_multiline = quote
            elif quote == in_multiline:
                in_multiline = None
        match = None if starts_inside else _HEADER.match(content)
        if not match:
            continue
        name = re.sub(r"\s*\.\s*", ".", match.group(2))
        if match.group(1) == "[[":
            counters[name] = counters.get(name, -1) + 1
            found = f"{name}[{counters[name]}]"
        else:
            found = name
    return found
