"""One gc run over the selected images: registry retention per image, S3 gc per bucket.

One failing image or bucket does not stop the others: each target carries its own error, and
`GcRun.failed` names them so the command can report everything first and fail afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prebuild.errors import PrebuildError
from prebuild.model import ImageSpec, Project, S3Settings
from prebuild.plan.planner import make_client, select
from prebuild.progress import Track, silent
from prebuild.registry.refs import ImageRef
from prebuild.registry.retention import RegistryGcReport, collect

CACHE_TAG = "buildcache"  # the default cache ref's tag, protected even if the config moved it

IMAGE_WORKERS = 4  # images inspected at once (each also runs retention.WORKERS requests)
RegistryTarget = tuple[str, str, RegistryGcReport | str]  # (name, REGISTRY/NAME, report or error)


@dataclass
class S3Target:
    """One distinct S3 cache location and the images sharing it."""

    settings: S3Settings
    images: list[str] = field(default_factory=list)
    report: Any = None  # prebuild.cache.s3.gc.GcReport
    lifecycle: str | None = None  # "set" | "unchanged" | None (not asked)
    error: str | None = None


@dataclass
class GcRun:
    """What one run found (and, with `apply`, deleted) per registry image and per bucket."""

    registry: list[RegistryTarget]
    buckets: list[S3Target]
    dry_run: bool
    grace_seconds: int

    def storage(self) -> dict[str, int | None]:
        """Bytes stored after this run: distinct registry blobs of the tags left, S3 blob
        objects; None where a target failed or none is configured."""
        reports = [r for _, _, r in self.registry]
        registry = None
        if reports and all(isinstance(r, RegistryGcReport) for r in reports):
            blobs: dict[str, int] = {}
            for report in reports:
                assert isinstance(report, RegistryGcReport)
                blobs.update(report.kept_blobs)
            registry = sum(blobs.values())
        s3 = None
        if self.buckets and all(t.report is not None for t in self.buckets):
            s3 = sum(t.report.bytes_stored for t in self.buckets)
        return {"registry": registry, "s3": s3}

    @property
    def failed(self) -> list[str]:
        """Targets that failed: image names and s3:// locations."""
        names = [name for name, _, report in self.registry if isinstance(report, str)]
        return names + [location(t.settings) for t in self.buckets if t.error or t.report.failed]


def run_gc(
    project: Project,
    names: Sequence[str],
    *,
    apply: bool,
    keep: int | None = None,
    max_age: int | None = None,
    grace: int | None = None,
    setup_lifecycle: bool = False,
    track: Track = silent,
) -> GcRun:
    """gc of `names` (all images when empty); None options fall back to the config's gc table."""
    settings = project.settings
    specs = select(project, names)
    client = make_client(project)

    def one(spec: ImageSpec) -> RegistryTarget:
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
                track=track,
            )
        except (PrebuildError, ValueError) as exc:
            report = str(exc)
        return spec.name, repo, report

    with ThreadPoolExecutor(IMAGE_WORKERS) as pool:  # a dead registry costs its deadline once
        registry = list(pool.map(one, specs))
    grace_seconds = grace if grace is not None else settings.grace_seconds
    buckets = s3_targets(specs)
    for target in buckets:
        _run_s3(
            target, grace_seconds=grace_seconds, apply=apply, lifecycle=setup_lifecycle, track=track
        )
    return GcRun(registry, buckets, dry_run=not apply, grace_seconds=grace_seconds)


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


def s3_targets(specs: Iterable[ImageSpec]) -> list[S3Target]:
    """One target per distinct (bucket, endpoint, prefix): gc of a prefix sees all its users."""
    targets: dict[tuple[str, str | None, str], S3Target] = {}
    for spec in specs:
        s3 = spec.cache.s3
        if spec.cache.backend in ("s3", "s3-sync") and s3 is not None:
            key = (s3.bucket, s3.endpoint_url, s3.prefix)
            targets.setdefault(key, S3Target(s3)).images.append(spec.name)
    return list(targets.values())


def _run_s3(
    target: S3Target, *, grace_seconds: int, apply: bool, lifecycle: bool, track: Track
) -> None:
    from prebuild.cache.s3.client import make_client as make_s3_client
    from prebuild.cache.s3.gc import collect_garbage, setup_lifecycle  # boto3: only when needed

    try:
        client = make_s3_client(target.settings)
        if lifecycle:
            changed = setup_lifecycle(target.settings, client=client)
            target.lifecycle = "set" if changed else "unchanged"
        target.report = collect_garbage(
            target.settings, grace_seconds=grace_seconds, apply=apply, client=client, track=track
        )
    except PrebuildError as exc:
        target.error = str(exc)


def location(s3: S3Settings) -> str:
    return f"s3://{s3.bucket}/{s3.prefix}"
