"""`--context NAME`: build (or pull, or plan) on the engine of another docker context."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def _use(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        from prebuild.engine import contexts

        contexts.use_context(value)


def context_option(function: F) -> F:
    """Handled while parsing (the command never sees it): every docker call of the run then
    goes to that context's engine, as with `docker --context NAME` (it wins over DOCKER_HOST)."""
    return click.option(
        "--context",
        "docker_context",
        default=None,
        metavar="NAME",
        expose_value=False,
        is_eager=True,
        callback=_use,
        help="docker context whose engine builds (as `docker --context NAME`).",
    )(function)
