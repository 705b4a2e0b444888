"""`prebuild pull`: the runner's pre-pull hook."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import click

from prebuild.cli.context import context_option
from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.deadline import Deadline, started
from prebuild.engine.contexts import resolve_builder
from prebuild.engine.local import ENGINES, Local, choose
from prebuild.errors import UsageError
from prebuild.pull import output
from prebuild.pull.hook import Fallback, pull_one


@click.command("pull")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--tag-as",
    "tag_as",
    default=None,
    help="Local name to tag the image as (default: NAME). One NAME only.",
)
@click.option(
    "--fallback",
    type=click.Choice(["build", "cache-args", "fail"]),
    default="build",
    show_default=True,
    envvar="PREBUILD_PULL_FALLBACK",
    help="When the exact image is missing: build read-only from the cache, print cache args, "
    "or fail. Env: PREBUILD_PULL_FALLBACK.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "shell", "github", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    envvar="PREBUILD_PULL_TIMEOUT",
    help="Seconds for everything before a fallback (registry, engine, pull), all images "
    "together. Env: PREBUILD_PULL_TIMEOUT.",
)
@click.option(
    "--build-timeout",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    envvar="PREBUILD_PULL_BUILD_TIMEOUT",
    help="Seconds a fallback build may take. Env: PREBUILD_PULL_BUILD_TIMEOUT.",
)
@click.option(
    "--builder",
    default=None,
    envvar="PREBUILD_BUILDER",
    help="buildx builder for the fallback build. Env: PREBUILD_BUILDER.",
)
@click.option(
    "--platform",
    default=None,
    envvar="PREBUILD_PULL_PLATFORM",
    help="Platform to pull, e.g. linux/arm64 (default: the image's only platform, else the "
    "runner's). Env: PREBUILD_PULL_PLATFORM.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="Engine whose image store gets the image (default: docker; podman when only podman "
    "is installed). Env: PREBUILD_ENGINE.",
)
@context_option
@config_option
def pull(
    names: tuple[str, ...],
    tag_as: str | None,
    fallback: str,
    fmt: str,
    timeout: float,
    build_timeout: float,
    builder: str | None,
    platform: str | None,
    engine: str | None,
    config: Path | None,
) -> None:
    """Pull each image by its content key; fall back to a read-only cached build. Never writes."""
    if tag_as and len(names) > 1:
        raise UsageError("--tag-as takes one image name")
    output.check(fmt, os.environ)
    # one budget for the whole command, every name included, counted from the process's start
    budget = Deadline(timeout, "pull", start=started())
    project = load_project(config, partial=True)
    chosen = choose(engine)
    os.environ["PREBUILD_ENGINE"] = chosen  # whose credentials the registry client reads
    builder = builder or project.settings.builder
    builder = resolve_builder(builder) if chosen == "docker" else builder
    local = Local(chosen, builder, project.settings.insecure_registries)
    mode = cast(Fallback, fallback)  # click.Choice already restricted it to Fallback's values
    results = [
        pull_one(
            project,
            name,
            local_name=tag_as,
            fallback=mode,
            timeout=timeout,
            builder=builder,
            platform=platform,
            budget=budget,
            build_timeout=build_timeout,
            engine=local,
        )
        for name in names
    ]
    for line in output.emit(results, fmt, os.environ):
        click.echo(line)
    raise SystemExit(1 if any(r.outcome == "failed" for r in results) else 0)
