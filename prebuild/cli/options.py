"""Options shared by several commands, defined once so their names and help stay identical."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import click

from prebuild import deadline as deadlines
from prebuild.cli import CONFIG_OPTION_HELP
from prebuild.durations import format_duration, parse_duration

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


def deadline_option(command: str) -> Callable[[F], F]:
    """`--deadline DUR`: the whole command's time budget. The decorated function runs inside
    its deadline's scope (prebuild.deadline), so every registry, S3 and engine call under it
    gets what is left; default: $PREBUILD_DEADLINE, else the command's default."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(*args: object, deadline: str | None = None, **kwargs: object) -> object:
            with deadlines.scope(deadlines.for_command(command, deadline)):
                return function(*args, **kwargs)

        default = deadlines.DEFAULTS.get(command)
        return click.option(
            "--deadline",
            "deadline",
            default=None,
            metavar="DUR",
            help="Time budget for the whole command, e.g. 90s, 10m, 4h "
            f"(default: {format_duration(int(default)) if default else 'none'}). "
            "Env: PREBUILD_DEADLINE.",
        )(cast(F, run))

    return decorate
