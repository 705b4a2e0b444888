"""Options shared by several commands, defined once so their names and help stay identical."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from prebuild.cli import CONFIG_OPTION_HELP

F = TypeVar("F", bound=Callable[..., object])


def config_option(function: F) -> F:
    """`-c/--config PATH`, passed as `config: Path | None` (None: $PREBUILD_CONFIG or discovery,
    both handled by load_project, so the core behaves the same without the CLI)."""
    return click.option(
        "-c",
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=True),
        default=None,
        metavar="PATH",
        help=CONFIG_OPTION_HELP,
    )(function)
