"""`prebuild explain NAME`: every input that went into an image's key."""

from __future__ import annotations

from pathlib import Path

import click

from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.engine import platforms
from prebuild.key import material as keys
from prebuild.plan.planner import make_plan


@click.command("explain")
@click.argument("name")
@click.option("--offline", is_flag=True, help="Do not resolve base images (provisional key).")
@config_option
def explain(name: str, offline: bool, config: Path | None) -> None:
    """Show the Dockerfile, build args, platforms, bases and files hashed into NAME's key."""
    project = load_project(config)
    result = make_plan(
        project,
        [name],
        offline=offline,
        check_presence=False,
        native_platform=lambda: platforms.native(project.settings.builder, ask_builder=not offline),
    )
    image = result.by_name()[name]
    click.echo(f"image      {image.name}")
    click.echo(f"ref        {image.ref or '(no key: ' + image.reason + ')'}")
    if image.material is not None:
        for line in keys.explain(image.material, image.key or "(none)"):
            click.echo(line)
