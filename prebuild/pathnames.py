"""How a path is shown in messages and keys: relative to a root when under it, else absolute."""

from __future__ import annotations

from pathlib import Path


def relative_or_absolute(path: Path, root: Path) -> str:
    """POSIX `path` relative to `root`, or `path` itself when it is outside `root`.

    Lexical, like Path.relative_to: callers that must see through symlinks or `..` pass
    resolved paths.
    """
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
