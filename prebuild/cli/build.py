"""`prebuild build`: the nightly job and the manual rebuild."""

from __future__ import annotations

from pathlib import Path

import click

from prebuild.build.run import BuildArgs, build_project
from prebuild.cli.context import context_option
from prebuild.cli.options import config_option, deadline_option
from prebuild.config.load import load_project
from prebuild.engine.contexts import resolve_builder
from prebuild.report.nightly import Outputs
from prebuild.report.nightly import check as check_outputs
from prebuild.report.results import exit_code


@click.command("build")
@click.argument("names", nargs=-1)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel builds (default: config `jobs`, else 1).",
)
@click.option("--force", is_flag=True, help="Rebuild even images present in the registry.")
@click.option("--dry-run", is_flag=True, help="Plan and print what would be built; build nothing.")
@click.option(
    "--builder",
    default=None,
    envvar="PREBUILD_BUILDER",
    help="buildx builder to use. Env: PREBUILD_BUILDER.",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a JSON report here.",
)
@click.option(
    "--summary",
    "summary_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--metrics",
    "metrics_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a Prometheus textfile here (node_exporter textfile collector).",
)
@click.option(
    "--history/--no-history",
    default=None,
    help="Keep this run's report in the history (default: when building every image).",
)
@click.option(
    "--allow-untrusted",
    is_flag=True,
    help="Push even when the CI context looks like a pull request.",
)
@click.option(
    "--live/--plain", "live", default=None, help="Progress display (default: live table on a TTY)."
)
@click.option(
    "--platform",
    default=None,
    metavar="PLATFORM",
    help="Split build: only this platform (e.g. linux/arm64 on an arm64 runner), pushed "
    "under a platform tag for a later `prebuild merge`.",
)
@deadline_option("build")
@context_option
@config_option
def build(
    names: tuple[str, ...],
    jobs: int | None,
    force: bool,
    dry_run: bool,
    builder: str | None,
    report_file: Path | None,
    summary_file: Path | None,
    metrics_file: Path | None,
    history: bool | None,
    allow_untrusted: bool,
    live: bool | None,
    platform: str | None,
    config: Path | None,
) -> None:
    """Build and push every image (or NAMES) whose key is not in the registry yet.

    Exits 1 when any image failed, was blocked, or (with --dry-run) could not be checked."""
    outputs = Outputs(
        report=report_file,
        summary=summary_file,
        metrics=metrics_file,
        keep_history=not dry_run and (history if history is not None else not names),
        measure=not dry_run,
    )
    check_outputs(outputs)  # before anything is built: a run that cannot report pushes nothing
    project = load_project(config)
    builder = resolve_builder(builder or project.settings.builder)
    args = BuildArgs(jobs, force, dry_run, builder, allow_untrusted, live, platform)
    warn = lambda text: click.echo(f"warning: {text}", err=True)  # noqa: E731
    plan, results = build_project(project, names, args, outputs, warn=warn)
    for result in results:
        detail = result.ref if result.status in ("built", "skipped", "planned") else result.reason
        click.echo(f"{result.name}\t{result.status}\t{detail}")
    unchecked = [p.name for p in plan.images if p.status == "unknown"]
    if dry_run and unchecked:
        click.echo(f"error: status unknown for {', '.join(unchecked)}", err=True)
        raise SystemExit(1)
    raise SystemExit(exit_code(results))
