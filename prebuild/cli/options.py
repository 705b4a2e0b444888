"""Options shared by several commands, defined once so their names and help stay identical."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from prebuild.cli import CONFIG_OPTION_HELP
from prebuild.durations import parse_duration

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


def duration_option(flag: str, help_text: str) -> Callable[[F], F]:
    """`FLAG DUR` parsed by durations.parse_duration into seconds (None when not given); a bad
    value is a usage error (exit 2) naming the option."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return click.option(flag, callback=parse, metavar="DUR", help=help_text)
