"""`prebuild plan`: every image's key, ref and registry status; `--matrix` for CI fan-out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prebuild.cli.context import context_option
from prebuild.cli.options import config_option, deadline_option
from prebuild.config.load import load_project
from prebuild.engine import platforms
from prebuild.graph import waves
from prebuild.plan.planner import Plan, make_plan


@click.command("plan")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option("--offline", is_flag=True, help="Ask no registry: provisional keys, status unknown.")
@click.option(
    "--matrix",
    is_flag=True,
    help='Print a GitHub Actions matrix {"include": [{"image": NAME, "wave": N}]} of the images '
    "that need building, dependencies first.",
)
@click.option("--force", is_flag=True, help="With --matrix: list every image, present or not.")
@click.option(
    "--split-platforms",
    is_flag=True,
    help='With --matrix: one entry per image and platform ({"image", "wave", "platform"}), '
    "for `prebuild build NAME --platform P` on native runners, then `prebuild merge NAME`.",
)
@deadline_option("plan")
@context_option
@config_option
def plan(
    names: tuple[str, ...],
    as_json: bool,
    offline: bool,
    matrix: bool,
    force: bool,
    split_platforms: bool,
    config: Path | None,
) -> None:
    """Compute content keys and ask the registry which images exist (one request per image).

    Exits 1 when online and any image's status could not be determined (`unknown`): a CI step
    must not read "nothing to build" into a registry it could not ask."""
    project = load_project(config, partial=True)
    result = make_plan(
        project,
        names,
        offline=offline,
        native_platform=lambda: platforms.native(project.settings.builder, ask_builder=not offline),
    )
    if matrix:
        click.echo(json.dumps(matrix_for(result, names, force=force, split=split_platforms)))
    elif as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        for line in table(result):
            click.echo(line)
    for error in project.import_errors:  # the other images are listed above
        click.echo(f"error: {error}", err=True)
    if project.import_errors:
        raise SystemExit(2)
    unknown = [p.name for p in result.images if p.status == "unknown"]
    if unknown and not offline:
        click.echo(
            f"error: status unknown for {len(unknown)} image(s): {', '.join(unknown)}", err=True
        )
        raise SystemExit(1)


def matrix_for(
    result: Plan, names: tuple[str, ...], *, force: bool = False, split: bool = False
) -> dict[str, list[dict[str, object]]]:
    """Images needing a build, ordered in waves so no image precedes a sibling it builds FROM."""
    from prebuild.build.scheduler import (
        selection,  # build's display imports rich: only --matrix needs it
    )

    todo = selection(result, names, force=force)
    by_name = result.by_name()
    deps = {n: [d for d in by_name[n].depends_on if d in todo] for n in todo}
    include: list[dict[str, object]] = [
        {"image": name, "wave": index} for index, wave in enumerate(waves(deps)) for name in wave
    ]
    if split:  # an image's platforms share its wave: merge it before the next wave starts
        include = [
            {**e, "platform": p} for e in include for p in by_name[str(e["image"])].platforms
        ]
    return {"include": include}


def table(result: Plan) -> list[str]:
    rows = [(p.name, p.status, p.tag or "-", p.reason) for p in result.images]
    widths = [max(len(r[i]) for r in [("image", "status", "tag", ""), *rows]) for i in range(3)]
    lines = [f"{'image':<{widths[0]}}  {'status':<{widths[1]}}  {'tag':<{widths[2]}}  reason"]
    lines += [
        f"{n:<{widths[0]}}  {s:<{widths[1]}}  {t:<{widths[2]}}  {r}".rstrip() for n, s, t, r in rows
    ]
    return lines
