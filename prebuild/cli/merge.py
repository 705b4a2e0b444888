"""`prebuild merge`: join an image's per-platform pushes into its key tag (split builds)."""

from __future__ import annotations

from pathlib import Path

import click

from prebuild import trust
from prebuild.build.split import merge as merge_image
from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.engine import platforms
from prebuild.plan.planner import select


@click.command("merge")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--allow-untrusted",
    is_flag=True,
    help="Push even when the CI context looks like a pull request.",
)
@config_option
def merge(names: tuple[str, ...], allow_untrusted: bool, config: Path | None) -> None:
    """After `build NAME --platform P` ran for each platform: write NAME's key tag (and its
    moving tags) as one multi-platform index of those pushes."""
    project = load_project(config)
    trust.require_trusted(allow_untrusted=allow_untrusted)
    select(project, names)  # unknown names: exit 2 before anything is written
    native = lambda: platforms.native(project.settings.builder)  # noqa: E731
    results = [merge_image(project, name, native_platform=native) for name in names]
    for result in results:
        detail = result.reason if result.status == "failed" else result.ref
        click.echo(f"{result.name}\t{result.status}\t{detail}")
    raise SystemExit(max(r.exit_code for r in results))
