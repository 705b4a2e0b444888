"""`prebuild validate`: load the config and list its images; exit 2 with every located error."""

from __future__ import annotations

from pathlib import Path

import click

from prebuild.analysis import check
from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.model import Project
from prebuild.pathnames import relative_or_absolute


@click.command("validate")
@config_option
def validate(config: Path | None) -> None:
    """Check the config (schema, dependencies, Dockerfiles) without building anything."""
    project = load_project(config)
    check.raise_all(check.check_dockerfiles(project))
    for line in summary(project, Path.cwd()):
        click.echo(line)


def summary(project: Project, cwd: Path) -> list[str]:
    """`ok: N images from FILE`, then one aligned `name  dockerfile  platforms` line per image."""
    config_file = relative_or_absolute(project.config_file, cwd.resolve())
    lines = [f"ok: {len(project.images)} images from {config_file}"]
    rows = [
        (spec.name, relative_or_absolute(spec.dockerfile, spec.repo_root), ",".join(spec.platforms))
        for spec in project.images
    ]
    name_width = max((len(row[0]) for row in rows), default=0)
    file_width = max((len(row[1]) for row in rows), default=0)
    lines += [f"{n:<{name_width}}  {f:<{file_width}}  {p}" for n, f, p in rows]
    return lines
