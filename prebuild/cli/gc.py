"""`prebuild gc`: registry retention per image and S3 cache garbage collection per bucket.

A dry run unless --apply: gc deletes shared state other pipelines read, so seeing what would go
comes first. One failing image or bucket does not stop the others; the exit code says it failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from prebuild import trust
from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.durations import format_duration, parse_duration
from prebuild.errors import PrebuildError
from prebuild.model import DEFAULT_GRACE_SECONDS, ImageSpec, Project, S3Settings
from prebuild.plan.planner import make_client, select
from prebuild.registry.refs import ImageRef
from prebuild.registry.retention import STORAGE_NOTE, RegistryGcReport, collect

CACHE_TAG = "buildcache"  # the default cache ref's tag, protected even if the config moved it
NOT_CONFIGURED = "gc: not configured to run after builds"
DEFAULT_GRACE = DEFAULT_GRACE_SECONDS

_Image = tuple[str, str, RegistryGcReport | str]  # (name, REGISTRY/NAME, report or error)


@dataclass
class _S3Target:
    """One distinct S3 cache location and the images sharing it."""

    settings: S3Settings
    images: list[str] = field(default_factory=list)
    report: Any = None  # prebuild.cache.s3.gc.GcReport
    lifecycle: str | None = None  # "set" | "unchanged" | None (not asked)
    error: str | None = None


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


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
@click.option(
    "--max-age",
    callback=_duration,
    metavar="DUR",
    help="Also keep key tags younger than this, e.g. 30d (default: config gc.max_age).",
)
@click.option(
    "--grace",
    callback=_duration,
    metavar="DUR",
    help="S3: keep unreferenced blobs younger than this (default: config gc.grace, else "
    f"{format_duration(DEFAULT_GRACE)}).",
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
    settings = project.settings
    if after_build and not settings.gc_after_build:
        click.echo(NOT_CONFIGURED, err=as_json)
        if as_json:
            click.echo(json.dumps({"dry_run": True, "registry": [], "s3": []}))
        return
    apply = apply or after_build
    if apply or setup_lifecycle:
        trust.require_trusted(
            allow_untrusted=allow_untrusted, action="delete registry tags or cache"
        )
    specs = select(project, names)
    client = make_client(project)
    registry: list[_Image] = []
    for spec in specs:
        repo = f"{settings.registry}/{spec.name}"
        try:
            repository = ImageRef.parse(repo, default_tag=None)
            report: RegistryGcReport | str = collect(
                client,
                repository,
                keep=keep or settings.keep,
                max_age_seconds=max_age if max_age is not None else settings.max_age_seconds,
                protected_tags=protected_tags(project, repository),
                apply=apply,
            )
        except (PrebuildError, ValueError) as exc:
            report = str(exc)
        registry.append((spec.name, repo, report))
    grace_seconds = grace if grace is not None else settings.grace_seconds
    buckets = s3_targets(specs)
    for target in buckets:
        _run_s3(target, grace_seconds=grace_seconds, apply=apply, lifecycle=setup_lifecycle)
    if as_json:
        click.echo(json.dumps(as_document(registry, buckets, dry_run=not apply), indent=2))
    else:
        for line in text_report(registry, buckets, dry_run=not apply, grace=grace_seconds):
            click.echo(line)
    failed = [name for name, _, r in registry if isinstance(r, str)]
    failed += [_location(t.settings) for t in buckets if t.error or t.report.failed]
    if failed:
        raise PrebuildError(f"gc failed for {len(failed)} target(s): {', '.join(failed)}")


def protected_tags(project: Project, repository: ImageRef) -> set[str]:
    """Tags gc never deletes in `repository`: the image's moving tags, `buildcache`, and every
    cache ref (any image's, extra_from included) that lives in this repository."""
    tags = {CACHE_TAG}
    for spec in project.images:
        if f"{project.settings.registry}/{spec.name}" == repository.name:
            tags.update(spec.tags)
        for text in (spec.cache.ref, *spec.cache.extra_from):
            try:
                ref = ImageRef.parse(text) if text else None
            except ValueError:
                continue
            if ref is not None and ref.name == repository.name and ref.tag:
                tags.add(ref.tag)
    return tags


def s3_targets(specs: Iterable[ImageSpec]) -> list[_S3Target]:
    """One target per distinct (bucket, endpoint, prefix): gc of a prefix sees all its users."""
    targets: dict[tuple[str, str | None, str], _S3Target] = {}
    for spec in specs:
        s3 = spec.cache.s3
        if spec.cache.backend in ("s3", "s3-sync") and s3 is not None:
            key = (s3.bucket, s3.endpoint_url, s3.prefix)
            targets.setdefault(key, _S3Target(s3)).images.append(spec.name)
    return list(targets.values())


def _run_s3(target: _S3Target, *, grace_seconds: int, apply: bool, lifecycle: bool) -> None:
    from prebuild.cache.s3.gc import collect_garbage, setup_lifecycle  # boto3: only when needed
    from prebuild.cache.s3.sync import make_client as make_s3_client

    try:
        client = make_s3_client(target.settings)
        if lifecycle:
            changed = setup_lifecycle(target.settings, client=client)
            target.lifecycle = "set" if changed else "unchanged"
        target.report = collect_garbage(
            target.settings, grace_seconds=grace_seconds, apply=apply, client=client
        )
    except PrebuildError as exc:
        target.error = str(exc)


def _location(s3: S3Settings) -> str:
    return f"s3://{s3.bucket}/{s3.prefix}"


# -- output -----------------------------------------------------------------------------------


def as_document(
    registry: list[_Image], buckets: list[_S3Target], *, dry_run: bool
) -> dict[str, Any]:
    """`{"dry_run", "registry": [per image], "s3": [per bucket]}`; failures carry "error"."""
    images = [
        {"name": name, "image": repo}
        | (r.as_json() if isinstance(r, RegistryGcReport) else {"error": r})
        for name, repo, r in registry
    ]
    return {"dry_run": dry_run, "registry": images, "s3": [_s3_json(t) for t in buckets]}


def _s3_json(target: _S3Target) -> dict[str, Any]:
    s3 = target.settings
    doc: dict[str, Any] = {
        "bucket": s3.bucket,
        "endpoint_url": s3.endpoint_url,
        "prefix": s3.prefix,
        "images": target.images,
        "lifecycle": target.lifecycle,
    }
    if target.error is not None:
        return {**doc, "error": target.error}
    report = target.report
    return {
        **doc,
        "dry_run": report.dry_run,
        "manifests": report.manifests,
        "referenced": report.referenced,
        "deleted": [{"key": key, "size": size} for key, size in report.deleted],
        "bytes_deleted": report.bytes_deleted,
        "kept_young": [{"key": key, "size": size} for key, size in report.kept_young],
        "ignored": list(report.ignored),
        "failed": [{"key": key, "code": code} for key, code in report.failed],
    }


def text_report(
    registry: list[_Image], buckets: list[_S3Target], *, dry_run: bool, grace: int
) -> list[str]:
    """The human report: per image, then the storage note, then per bucket."""
    lines = ["gc: dry run, nothing is deleted (run with --apply to delete)"] if dry_run else []
    for _, repo, report in registry:
        lines += _registry_lines(repo, report)
    if any(isinstance(r, RegistryGcReport) and r.deleted for _, _, r in registry):
        lines.append(f"note: {STORAGE_NOTE}")
    for target in buckets:
        lines += _s3_lines(target, dry_run=dry_run, grace=grace)
    return lines


def _registry_lines(repo: str, report: RegistryGcReport | str) -> list[str]:
    if isinstance(report, str):
        return [f"registry {repo}: error: {report}"]
    verb = "would delete" if report.dry_run else "deleted"
    manifests = len({info.digest for info in report.deleted})
    lines = [
        f"registry {repo}: kept {len(report.kept)} tags, {verb} {len(report.deleted)} "
        f"tags ({manifests} manifests, ~{human_bytes(report.bytes_freed)})"
    ]
    width = max((len(tag) for tag, _ in report.kept), default=0)
    lines += [f"  kept          {tag:<{width}}  {why}".rstrip() for tag, why in report.kept]
    for action, infos in ((verb, report.deleted), ("left", report.not_deleted)):
        for info in infos:
            created = _utc(info.created) if info.created else "?"
            lines.append(f"  {action:<12}  {info.tag}  created {created}  {human_bytes(info.size)}")
    if report.refused:
        lines.append(
            f"  refused: the registry does not allow deletes (405/UNSUPPORTED); "
            f"{len(report.not_deleted)} tags left in place"
        )
        lines.append("  hint: enable deletes (distribution: REGISTRY_STORAGE_DELETE_ENABLED=true)")
    return lines


def _s3_lines(target: _S3Target, *, dry_run: bool, grace: int) -> list[str]:
    s3 = target.settings
    where = _location(s3) + (f" at {s3.endpoint_url}" if s3.endpoint_url else "")
    head = f"s3 {where} ({', '.join(target.images)})"
    lines: list[str] = []
    if target.lifecycle == "set":
        lines.append(f"{head}: lifecycle rule set (incomplete uploads abort after 1 day)")
    elif target.lifecycle == "unchanged":
        lines.append(f"{head}: lifecycle rule already set")
    if target.error is not None:
        return [*lines, f"{head}: error: {target.error}"]
    report = target.report
    verb = "would delete" if dry_run else "deleted"
    lines.append(
        f"{head}: {report.manifests} manifests name {report.referenced} blobs; {verb} "
        f"{len(report.deleted)} unreferenced blobs ({human_bytes(report.bytes_deleted)}); "
        f"kept {len(report.kept_young)} younger than {format_duration(grace)}"
    )
    if report.failed:
        codes = sorted({code for _, code in report.failed})
        lines.append(f"  failed to delete {len(report.failed)} blobs: {', '.join(codes)}")
    if report.ignored:
        lines.append(f"  ignored {len(report.ignored)} keys under blobs/ that are not digests")
    return lines


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_bytes(size: int) -> str:
    """Decimal units, like registries and S3 consoles show them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
