"""Garbage collection for an S3 cache in BuildKit's layout: delete blobs no manifest names.

Safety first, because a wrongly deleted blob silently breaks every build that reads the cache:
- a manifest that does not parse aborts gc before anything is deleted (no partial knowledge);
- only keys `{prefix}blobs/<digest>` are candidates (a nested cache's keys are never touched);
- unreferenced blobs younger than the grace period are kept: an export in flight uploads its
  blobs before its manifest (s3.go Finalize, s3sync.export_to_s3);
- manifests are listed again right before deleting, so one written meanwhile still protects its
  blobs (what is left is the window between that second look and the delete call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from prebuild.cache.s3.client import S3Client, as_utc, error_code, is_not_found, s3_error
from prebuild.cache.s3.layout import (
    CacheLayoutError,
    S3CacheError,
    blobs_prefix,
    is_digest,
    manifests_prefix,
    referenced_blobs,
)
from prebuild.model import S3Settings
from prebuild.progress import Track, silent

log = logging.getLogger(__name__)

DELETE_BATCH = 1000  # the DeleteObjects maximum
RULE_ID = "prebuild-abort-incomplete-uploads"


class GcAbortedError(S3CacheError):
    """gc stopped before deleting anything: what the bucket holds could not be fully understood."""


@dataclass(frozen=True)
class GcReport:
    """Outcome of one gc run; in a dry run `deleted`/`bytes_deleted` say what WOULD go."""

    referenced: int  # distinct blob digests named by the manifests
    deleted: list[tuple[str, int]]  # (key, size)
    kept_young: list[tuple[str, int]]  # unreferenced but within the grace period
    bytes_deleted: int
    dry_run: bool
    manifests: int = 0
    ignored: list[str] = field(default_factory=list)  # keys under blobs/ that are not digests
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, error code)
    bytes_stored: int = 0  # blob objects under the prefix after this run (before, if dry run)


_Manifests = dict[str, tuple[str, frozenset[str]]]  # key -> (ETag, referenced digests)


def collect_garbage(
    settings: S3Settings,
    *,
    grace_seconds: int,
    apply: bool,
    now: datetime | None = None,
    client: S3Client,
    track: Track = silent,
) -> GcReport:
    """Delete (only when `apply`) unreferenced blobs older than `grace_seconds`."""
    if grace_seconds < 0:
        raise ValueError("grace_seconds must be >= 0")
    clock = as_utc(now or datetime.now(UTC))
    bucket, base = settings.bucket, blobs_prefix(settings)
    manifests = _read_manifests(client, settings, {})
    referenced = _union(manifests)
    old: list[tuple[str, int]] = []
    young: list[tuple[str, int]] = []
    ignored: list[str] = []
    listed_bytes = 0
    listing = track(f"gc s3://{bucket}/{base}: objects listed", None)
    for obj in _list(client, bucket, base):
        listing.advance()
        key, size = obj["Key"], int(obj.get("Size", 0))
        listed_bytes += size
        digest = key[len(base) :]
        if not is_digest(digest):
            ignored.append(key)
        elif digest not in referenced:
            age = (clock - obj["LastModified"]).total_seconds()
            (old if age > grace_seconds else young).append((key, size))
    listing.finish()
    if old:  # second look: a manifest written since the first listing protects its blobs
        referenced = _union(_read_manifests(client, settings, manifests))
        old = [(key, size) for key, size in old if key[len(base) :] not in referenced]
    if apply and old:  # third look: an export that reuses an old blob touches it first
        old = _still_old(client, bucket, old, clock, grace_seconds)
    failed: list[tuple[str, str]] = []
    if apply and old:
        deleting = track(f"gc s3://{bucket}/{base}: deleted", len(old))
        failed = _delete(client, bucket, [key for key, _ in old], deleting.advance)
        deleting.finish()
    failed_keys = {key for key, _ in failed}
    deleted = [(key, size) for key, size in old if key not in failed_keys]
    for key, code in failed:
        log.error("could not delete s3://%s/%s: %s", bucket, key, code)
    report = GcReport(
        referenced=len(referenced),
        deleted=deleted,
        kept_young=young,
        bytes_deleted=sum(size for _, size in deleted),
        dry_run=not apply,
        manifests=len(manifests),
        ignored=ignored,
        failed=failed,
        bytes_stored=listed_bytes - (sum(size for _, size in deleted) if apply else 0),
    )
    log.info(
        "s3 cache gc%s: %d manifests, %d blobs referenced, %d unreferenced deleted (%d bytes), "
        "%d kept within the grace period",
        "" if apply else " (dry run)",
        report.manifests,
        report.referenced,
        len(deleted),
        report.bytes_deleted,
        len(young),
    )
    return report


def _still_old(
    client: S3Client, bucket: str, candidates: list[tuple[str, int]], clock: datetime, grace: int
) -> list[tuple[str, int]]:
    """Candidates whose LastModified is still past the grace period right before the delete.

    s3-sync exports copy a reused blob onto itself (touch) before writing the manifest that
    names it; re-reading the age here shrinks the window in which gc could delete a blob an
    export just decided to reuse from the whole gc run to one HEAD-to-DELETE gap.
    """

    def age_ok(item: tuple[str, int]) -> bool:
        try:
            head = client.head_object(Bucket=bucket, Key=item[0])
        except ClientError:
            return False  # gone or unreadable: nothing to delete
        age: float = (clock - head["LastModified"]).total_seconds()
        return age > grace

    with ThreadPoolExecutor(max_workers=8) as pool:
        keep = list(pool.map(age_ok, candidates))
    return [item for item, ok in zip(candidates, keep, strict=True) if ok]


def _union(manifests: _Manifests) -> set[str]:
    return set().union(*(refs for _, refs in manifests.values()))


def _list(client: S3Client, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(f"listing s3://{bucket}/{prefix}", exc) from exc


def _read_manifests(client: S3Client, settings: S3Settings, known: _Manifests) -> _Manifests:
    """Every manifest's references; unchanged ETags reuse `known`, which is kept (conservative)."""
    bucket = settings.bucket
    found: _Manifests = {}
    for obj in _list(client, bucket, manifests_prefix(settings)):
        key, etag = obj["Key"], str(obj.get("ETag", ""))
        if key.endswith("/") and not obj.get("Size"):
            continue  # a console "folder" marker, not a manifest
        if key in known and known[key][0] == etag:
            found[key] = known[key]
            continue
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):
                continue  # deleted since the listing: it protects nothing any more
            raise GcAbortedError(
                f"gc aborted, nothing deleted: cannot read s3://{bucket}/{key} ({error_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise GcAbortedError(
                f"gc aborted, nothing deleted: cannot read s3://{bucket}/{key} ({exc})",
                transient=True,
            ) from exc
        try:
            found[key] = (etag, frozenset(referenced_blobs(body)))
        except CacheLayoutError as exc:
            raise GcAbortedError(
                f"gc aborted, nothing deleted: s3://{bucket}/{key} is not a valid cache "
                f"manifest ({exc})",
                hint="fix or delete that manifest, then run gc again",
            ) from exc
    for key, value in known.items():
        found.setdefault(key, value)
    return found


def _delete(
    client: S3Client, bucket: str, keys: list[str], advance: Callable[[int], None]
) -> list[tuple[str, str]]:
    """Batched DeleteObjects; returns the (key, code) pairs S3 refused."""
    failed: list[tuple[str, str]] = []
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        try:
            response = client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(f"deleting from s3://{bucket}", exc) from exc
        failed += [(e.get("Key", ""), e.get("Code", "")) for e in response.get("Errors", [])]
        advance(len(batch))
    return failed


def setup_lifecycle(settings: S3Settings, *, days: int = 1, client: S3Client) -> bool:
    """Abort multipart uploads left by killed exports after `days`; other rules are kept.

    Returns False when the bucket already had exactly this rule (nothing written).
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    bucket = settings.bucket
    rule_id = f"{RULE_ID}:{settings.prefix}" if settings.prefix else RULE_ID
    if len(rule_id) > 255:  # S3's limit for a rule ID
        rule_id = rule_id[:255]
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if error_code(exc) != "NoSuchLifecycleConfiguration":
            raise s3_error(f"reading the lifecycle of s3://{bucket}", exc) from exc
        rules = []
    except BotoCoreError as exc:
        raise s3_error(f"reading the lifecycle of s3://{bucket}", exc) from exc
    ours = {
        "ID": rule_id,
        "Filter": {"Prefix": settings.prefix},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }
    current = next((rule for rule in rules if rule.get("ID") == rule_id), None)
    if current is not None and all(current.get(k) == v for k, v in ours.items()):
        return False
    merged = [rule for rule in rules if rule.get("ID") != rule_id] + [ours]
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": merged}
        )
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(f"writing the lifecycle of s3://{bucket}", exc) from exc
    log.info(
        "s3://%s: incomplete uploads under %r now abort after %d day(s)",
        bucket,
        settings.prefix,
        days,
    )
    return True
