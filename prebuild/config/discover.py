"""Which config file a command uses: -c, else $PREBUILD_CONFIG, else the nearest one upwards."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from prebuild.errors import ConfigError

CONFIG_ENV = "PREBUILD_CONFIG"
CONFIG_FILE = "prebuild.toml"
PYPROJECT = "pyproject.toml"

_TOOL_HEADER = re.compile(r"^\s*\[\s*tool\s*\.\s*prebuild\s*[\].]", re.MULTILINE)


def find_config(
    config: Path | None = None, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The config file to use: `config`, else $PREBUILD_CONFIG, else the nearest prebuild.toml or
    pyproject.toml with [tool.prebuild] in `cwd` or a parent directory."""
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    if config is not None:
        return _explicit(Path(config), cwd, "-c/--config")
    if env.get(CONFIG_ENV):
        return _explicit(Path(env[CONFIG_ENV]), cwd, f"env {CONFIG_ENV}")
    for directory in (cwd, *cwd.parents):
        found = _config_in(directory)
        if found is not None:
            return found
    raise ConfigError(
        f"no {CONFIG_FILE} or {PYPROJECT} with [tool.prebuild] found in {cwd} or any parent",
        hint=f"create {CONFIG_FILE} at the repo root, or pass -c PATH / set {CONFIG_ENV}",
    )


def _explicit(path: Path, cwd: Path, given_by: str) -> Path:
    path = Path(os.path.normpath(cwd / path))  # absolute; symlinks kept (repo_root is its dir)
    if path.is_dir():
        found = _config_in(path)
        if found is None:
            raise ConfigError(
                f"no {CONFIG_FILE} or {PYPROJECT} with [tool.prebuild] in directory {path} "
                f"(given by {given_by})"
            )
        return found
    if not path.exists():
        raise ConfigError(f"config file not found: {path} (given by {given_by})", file=str(path))
    return path


def _config_in(directory: Path) -> Path | None:
    candidate = directory / CONFIG_FILE
    if candidate.is_file():
        return candidate
    candidate = directory / PYPROJECT
    if candidate.is_file() and _has_tool_table(candidate):
        return candidate
    return None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if _TOOL_HEADER.search(text):
        return True
    try:
        return "prebuild" in tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return False
