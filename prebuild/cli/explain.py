"""`prebuild explain NAME [--since REF]`: every input of an image's key, or what changed."""

from __future__ import annotations

from pathlib import Path

import click

from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.engine import platforms
from prebuild.key import material as keys
from prebuild.plan.planner import make_client, make_plan


@click.command("explain")
@click.argument("name")
@click.option("--offline", is_flag=True, help="Do not resolve base images (provisional key).")
@click.option(
    "--since",
    metavar="REF",
    help="List what differs from an earlier key: a key (tag) or a tag such as `latest`.",
)
@config_option
def explain(name: str, offline: bool, since: str | None, config: Path | None) -> None:
    """Show the Dockerfile, build args, platforms, bases and files hashed into NAME's key."""
    project = load_project(config, partial=True)
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
    if image.material is None:
        return
    if since is None:
        for line in keys.explain(image.material, image.key or "(none)"):
            click.echo(line)
        for what, origin in image.spec.provenance:  # imported images: where each value came from
            value = image.spec.build_args.get(what.removeprefix("build-arg "), "")
            shown = ",".join(image.platforms) if what == "platform" else value
            click.echo(f"from       {what}={shown}  <- {origin}")
        return
    from prebuild.report import history, why
    from prebuild.report import since as earlier

    found = earlier.find(
        name,
        since,
        repository=image.repository,
        client=make_client(project),
        store=history.open_store(project),
        platform=image.platforms[0] if image.platforms else None,
    )
    changes = why.differences(found.material, why.material_doc(image.material))
    click.echo(f"since      {since}: key {found.key} (report {found.report})")
    click.echo(f"now        key {image.key or '(none: ' + image.reason + ')'}")
    click.echo(f"changes    {len(changes) or 'none: same material'}")
    for line in changes:
        click.echo(f"  {line}")
