"""How a gc run is shown: one JSON document, or the human report (per image, then per bucket)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prebuild.durations import format_duration
from prebuild.gc.run import GcRun, S3Target, location
from prebuild.registry.retention import STORAGE_NOTE, RegistryGcReport
from prebuild.sizes import human_bytes


def as_document(run: GcRun) -> dict[str, Any]:
    """`{"dry_run", "registry": [per image], "s3": [per bucket]}`; failures carry "error"."""
    images = [
        {"name": name, "image": repo}
        | (r.as_json() if isinstance(r, RegistryGcReport) else {"error": r})
        for name, repo, r in run.registry
    ]
    return {"dry_run": run.dry_run, "registry": images, "s3": [_s3_json(t) for t in run.buckets]}


def _s3_json(target: S3Target) -> dict[str, Any]:
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


def text_report(run: GcRun) -> list[str]:
    """The human report: per image, then the storage note, then per bucket."""
    dry_run = run.dry_run
    lines = ["gc: dry run, nothing is deleted (run with --apply to delete)"] if dry_run else []
    for _, repo, report in run.registry:
        lines += _registry_lines(repo, report)
    if any(isinstance(r, RegistryGcReport) and r.deleted for _, _, r in run.registry):
        lines.append(f"note: {STORAGE_NOTE}")
    for target in run.buckets:
        lines += _s3_lines(target, dry_run=dry_run, grace=run.grace_seconds)
    return lines


def _registry_lines(repo: str, report: RegistryGcReport | str) -> list[str]:
    if isinstance(report, str):
        return [f"registry {repo}: error: {report}"]
    verb = "would delete" if report.dry_run else "deleted"
    # a deleted index's per-platform manifests are deleted with it
    manifests = len({info.digest for info in report.deleted}) + len(report.children_deleted)
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


def _s3_lines(target: S3Target, *, dry_run: bool, grace: int) -> list[str]:
    s3 = target.settings
    where = location(s3) + (f" at {s3.endpoint_url}" if s3.endpoint_url else "")
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
