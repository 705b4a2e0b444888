"""`prebuild gc`: registry retention per image and S3 cache garbage collection per bucket.

A dry run unless --apply: gc deletes shared state other pipelines read, so seeing what would go
comes first. One failing image or bucket does not stop the others; the exit code says it failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from prebuild import trust
from prebuild.cli.options import config_option, deadline_option, duration_option
from prebuild.config.load import load_project
from prebuild.durations import format_duration
from prebuild.errors import PrebuildError
from prebuild.gc.render import as_document, text_report
from prebuild.gc.run import run_gc
from prebuild.model import DEFAULT_GRACE_SECONDS
from prebuild.progress import reporter

NOT_CONFIGURED = "gc: not configured to run after builds"


@click.command("gc")
@click.argument("names", nargs=-1)
@click.option("--apply", is_flag=True, help="Delete for real (default: report what would go).")
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Newest key tags kept per image (default: config gc.keep, else 5).",
)
@duration_option(
    "--max-age", "Also keep key tags younger than this, e.g. 30d (default: config gc.max_age)."
)
@duration_option(
    "--grace",
    "S3: keep unreferenced blobs younger than this (default: config gc.grace, else "
    f"{format_duration(DEFAULT_GRACE_SECONDS)}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option(
    "--after-build",
    is_flag=True,
    help="Post-build hook: runs (and applies) only when config gc.after_build is true.",
)
@click.option(
    "--setup-lifecycle",
    is_flag=True,
    help="Also give each S3 cache bucket a rule aborting incomplete uploads after 1 day.",
)
@click.option(
    "--allow-untrusted",
    is_flag=True,
    help="Delete even when the CI context looks like a pull request.",
)
@deadline_option("gc")
@config_option
def gc(
    names: tuple[str, ...],
    apply: bool,
    keep: int | None,
    max_age: int | None,
    grace: int | None,
    as_json: bool,
    after_build: bool,
    setup_lifecycle: bool,
    allow_untrusted: bool,
    config: Path | None,
) -> None:
    """Delete old key tags from the registry and unreferenced blobs from S3 caches.

    Only key tags (24 hex chars) are ever deleted, never one sharing its manifest with a
    moving tag (latest) or a cache ref. Without --apply nothing is deleted.
    """
    project = load_project(config)
    if after_build and not project.settings.gc_after_build:
        click.echo(NOT_CONFIGURED, err=as_json)
        if as_json:
            click.echo(json.dumps({"dry_run": True, "registry": [], "s3": []}))
        return
    apply = apply or after_build
    if apply or setup_lifecycle:
        trust.require_trusted(
            allow_untrusted=allow_untrusted, action="delete registry tags or cache"
        )
    with reporter() as track:  # a bar per step on a TTY, a few plain lines otherwise (stderr)
        run = run_gc(
            project,
            names,
            apply=apply,
            keep=keep,
            max_age=max_age,
            grace=grace,
            setup_lifecycle=setup_lifecycle,
            track=track,
        )
    lines = [json.dumps(as_document(run), indent=2)] if as_json else text_report(run)
    for line in lines:
        click.echo(line)
    if after_build:  # the nightly's storage point is what is left after its gc
        from prebuild.report.nightly import record_storage

        record_storage(project, run.storage(), warn=lambda t: click.echo(f"warning: {t}", err=True))
    if run.failed:
        raise PrebuildError(f"gc failed for {len(run.failed)} target(s): {', '.join(run.failed)}")
