"""One `prebuild build`: check, plan, build in waves, report; an interrupt still leaves a report.

The command's whole flow, so that cli/build.py only turns options into this call and prints
the per-image lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prebuild import trust
from prebuild.build import split
from prebuild.build.display import Display, make_display
from prebuild.build.scheduler import BuildOptions, run
from prebuild.cache.backends import check_builder
from prebuild.cli import signals
from prebuild.engine import capability, platforms
from prebuild.engine.buildx import builder_driver
from prebuild.model import Project
from prebuild.plan.planner import Plan, make_plan, select
from prebuild.report import interrupted
from prebuild.report.nightly import Outputs, finish
from prebuild.report.results import ImageResult


@dataclass(frozen=True)
class BuildArgs:
    """The command's choices (None: the config's)."""

    jobs: int | None = None
    force: bool = False
    dry_run: bool = False
    builder: str | None = None
    allow_untrusted: bool = False
    live: bool | None = None
    platform: str | None = None


def build_project(
    project: Project,
    names: Sequence[str],
    args: BuildArgs,
    outputs: Outputs,
    *,
    warn: Callable[[str], None],
) -> tuple[Plan, list[ImageResult]]:
    """Build what the plan says is missing and write the run's outputs; on SIGINT/SIGTERM the
    images planned so far are written as an interrupted report before the process exits."""
    builder = args.builder
    started = datetime.now(UTC)
    done: dict[str, ImageResult] = {}  # filled as images finish
    planned: list[interrupted.Planned] = [(s.name, None, None) for s in select(project, names)]
    shown: list[Display] = []

    def stop(signal_name: str) -> None:  # from the signal handler: see cli/signals.py
        for display in shown:
            display.close()
        interrupted.write(planned, done, outputs, signal_name=signal_name, started=started)

    unregister = signals.on_interrupt(stop)
    try:
        if not args.dry_run:
            trust.require_trusted(allow_untrusted=args.allow_untrusted)
            driver = builder_driver(builder)
            for spec in project.images:
                check_builder(spec.cache, driver)
        plan = make_plan(project, names, native_platform=lambda: platforms.native(builder))
        planned[:] = [(p.name, p.key, p.ref) for p in plan.images]
        if args.platform:
            split.check_platform(plan, names, args.platform)
        options = BuildOptions(
            jobs=args.jobs or project.settings.jobs,
            force=args.force,
            dry_run=args.dry_run,
            builder=builder,
            builder_platforms=lambda: capability.builder_platforms(builder),
            platform=args.platform,
        )
        shown.append(make_display(live=args.live))
        results = run(project, plan, names, options, shown[0], into=done)
    finally:
        unregister()
        for display in shown:
            display.close()
    finish(project, plan, results, outputs, started=started, finished=datetime.now(UTC), warn=warn)
    return plan, results
