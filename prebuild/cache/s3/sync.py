"""Backend `s3-sync`: move a BuildKit `type=local` cache to and from S3 in BuildKit's s3 layout.

Export mirrors cache/remotecache/s3/s3.go Finalize: every blob first (existing ones are only
touched when old, like `touch_refresh`), the manifest LAST, so a concurrent reader never sees a
manifest naming a blob that is not there yet. Nothing is deleted here (that is s3gc's job, with a
grace period); concurrent exporters of one name: the last manifest written wins.

Import verifies every blob (present, size, digest) before writing index.json: a broken layout is
never handed to BuildKit; a cold or unusable cache is reported as False, not as an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from prebuild import deadline as deadlines
from prebuild.cache.s3.client import (
    TRANSFER_CONCURRENCY,
    S3Client,
    as_utc,
    in_time,
    is_not_found,
    s3_error,
)
from prebuild.cache.s3.layout import (
    BlobRef,
    CacheLayoutError,
    Writer,
    blob_key,
    blob_relpath,
    encode_json,
    layer_blobs,
    local_layout_to_s3_manifest,
    manifest_key,
    manifest_names,
    s3_manifest_to_local_layout,
)
from prebuild.durations import parse_duration
from prebuild.errors import ConfigError
from prebuild.model import S3Settings
from prebuild.progress import Track, silent

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MULTIPART_BYTES = 64 * 1024 * 1024
DEFAULT_TOUCH_REFRESH = timedelta(hours=24)  # s3.go default touch_refresh


@dataclass(frozen=True)
class ExportStats:
    """What one export did; `bytes` counts uploaded bytes only."""

    uploaded: int
    skipped: int
    bytes: int
    touched: int = 0
    manifest_keys: tuple[str, ...] = ()


def touch_refresh(settings: S3Settings) -> timedelta:
    """`touch_refresh` as a config duration ("24h", "1h30m", "2d"); unset: BuildKit's 24h.

    A value that is not a duration is an error (exit 2), never a silent 24h.
    """
    if not settings.touch_refresh:
        return DEFAULT_TOUCH_REFRESH
    try:
        return timedelta(seconds=parse_duration(settings.touch_refresh))
    except ValueError as exc:
        raise ConfigError(str(exc), key="cache.s3.touch_refresh") from None


# ---------------------------------------------------------------- export


def export_to_s3(
    layout_dir: Path,
    settings: S3Settings,
    name: str,
    *,
    client: S3Client,
    parallelism: int | None = None,
    touch_after: timedelta | None = None,
    now: datetime | None = None,
    track: Track = silent,
) -> ExportStats:
    """Upload a `--cache-to type=local` directory as BuildKit's s3 cache `name` (";" = several).

    `touch_after` (default: settings.touch_refresh) re-dates existing blobs older than that; keep
    it below the gc grace period so a blob reused by an export in flight is never collected.
    """
    root = Path(layout_dir)
    keys = tuple(manifest_key(settings, n) for n in manifest_names(name))
    if not (root / "index.json").exists():  # export.go skips an empty result: no index at all
        log.warning("BuildKit exported no cache into %s (empty result): nothing uploaded", root)
        return ExportStats(0, 0, 0)
    config, blobs = local_layout_to_s3_manifest(root)
    body = encode_json(config)
    clock = as_utc(now or datetime.now(UTC))
    refresh = touch_after if touch_after is not None else touch_refresh(settings)
    transfer = TransferConfig(
        multipart_threshold=MULTIPART_BYTES,
        multipart_chunksize=MULTIPART_BYTES,
        max_concurrency=TRANSFER_CONCURRENCY,
    )

    step = track(f"s3-sync upload to s3://{settings.bucket}/{settings.prefix}: blobs", len(blobs))

    def sync(blob: BlobRef) -> tuple[str, int]:
        result = _sync_blob(
            client, settings, root / blob_relpath(blob.digest), blob, clock, refresh, transfer
        )
        step.advance()
        return result

    results = run_parallel(parallelism or settings.upload_parallelism, sync, blobs)
    step.finish()
    in_time(f"writing the cache manifest s3://{settings.bucket}/{keys[0]}")
    for key in keys:  # LAST: every blob it names is already in the bucket
        try:
            client.put_object(
                Bucket=settings.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(f"writing cache manifest s3://{settings.bucket}/{key}", exc) from exc
    stats = ExportStats(
        uploaded=sum(1 for what, _ in results if what == "uploaded"),
        skipped=sum(1 for what, _ in results if what != "uploaded"),
        bytes=sum(size for _, size in results),
        touched=sum(1 for what, _ in results if what == "touched"),
        manifest_keys=keys,
    )
    log.info(
        "cache exported to s3://%s/%s: %d blobs uploaded (%d bytes), %d already there",
        settings.bucket,
        keys[0],
        stats.uploaded,
        stats.bytes,
        stats.skipped,
    )
    return stats


def _sync_blob(
    client: S3Client,
    settings: S3Settings,
    path: Path,
    blob: BlobRef,
    now: datetime,
    refresh: timedelta,
    transfer: TransferConfig,
) -> tuple[str, int]:
    """Upload one blob unless the bucket has it; ("uploaded"|"skipped"|"touched", bytes sent)."""
    bucket, key = settings.bucket, blob_key(settings, blob.digest)
    in_time(f"uploading s3://{bucket}/{key}")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if not is_not_found(exc):
            raise s3_error(f"checking s3://{bucket}/{key}", exc) from exc
        head = None
    except BotoCoreError as exc:
        raise s3_error(f"checking s3://{bucket}/{key}", exc) from exc
    if head is not None and head.get("ContentLength") == blob.size:
        if now - head["LastModified"] <= refresh:
            return "skipped", 0
        try:  # s3.go touch: copy onto itself so LastModified says "still in use"
            client.copy(
                {"Bucket": bucket, "Key": key},
                bucket,
                key,
                ExtraArgs={
                    "Metadata": {"updated-at": now.isoformat()},
                    "MetadataDirective": "REPLACE",
                },
                Config=transfer,
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not touch s3://%s/%s: %s", bucket, key, exc)
            return "skipped", 0
        return "touched", 0
    if head is not None:
        log.warning("s3://%s/%s has the wrong size: uploading it again", bucket, key)
    try:
        client.upload_file(str(path), bucket, key, Config=transfer)
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
        raise s3_error(f"uploading s3://{bucket}/{key}", exc) from exc
    return "uploaded", blob.size


def run_parallel(workers: int, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Bounded thread pool; the first failure cancels what has not started, then is raised."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="prebuild-s3") as pool:
        futures = [pool.submit(fn, item) for item in items]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in pending:
            fut.cancel()
    for fut in futures:  # the pool has drained: nothing is still writing
        if not fut.cancelled() and (exc := fut.exception()) is not None:
            raise exc
    return [fut.result() for fut in futures]


# ---------------------------------------------------------------- import


def import_from_s3(
    settings: S3Settings,
    name: str,
    dest_dir: Path,
    *,
    client: S3Client,
    parallelism: int | None = None,
    image_manifest: bool = True,
    track: Track = silent,
) -> bool:
    """Fill the empty `dest_dir` with an OCI layout for `--cache-from type=local,src=dest_dir`.

    False (with the reason logged, `dest_dir` left empty) when there is no manifest (cold cache)
    or the cache is unusable (bad manifest, blob missing or corrupt). S3 failures other than
    "not found" raise S3CacheError.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"import destination {dest} is not empty")
    key = manifest_key(settings, manifest_names(name)[0])
    where = f"s3://{settings.bucket}/{key}"
    try:
        body = client.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            log.info("no cache manifest at %s: cold cache", where)
            return False
        raise s3_error(f"reading {where}", exc) from exc
    except BotoCoreError as exc:
        raise s3_error(f"reading {where}", exc) from exc
    try:
        blobs = layer_blobs(body)
        step = track(f"s3-sync download from {where}: blobs", len(blobs))

        def fetch(blob: BlobRef) -> None:
            _fetch_blob(client, settings, dest, blob)
            step.advance()

        run_parallel(parallelism or settings.upload_parallelism, fetch, blobs)
        step.finish()
        s3_manifest_to_local_layout(body, dir_writer(dest), image_manifest=image_manifest)
    except CacheLayoutError as exc:
        log.warning("not using the S3 cache %s: %s", where, exc)
        _clear(dest)
        return False
    except BaseException:
        _clear(dest)
        raise
    log.info("cache imported from %s: %d blobs", where, len(blobs))
    return True


def _fetch_blob(client: S3Client, settings: S3Settings, dest: Path, blob: BlobRef) -> None:
    """Download one blob, verifying size and digest before it gets its final name."""
    bucket, key = settings.bucket, blob_key(settings, blob.digest)
    in_time(f"downloading s3://{bucket}/{key}")
    target = dest / blob_relpath(blob.digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    algo = blob.digest.split(":", 1)[0]
    hasher, size = hashlib.new(algo), 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                response = client.get_object(Bucket=bucket, Key=key)
                body = response["Body"]
                # a trickled body never trips read_timeout: the deadline watchdog ends it
                token = deadlines.WATCH.arm(deadlines.current().end, lambda: _body_socket(body))
                try:
                    for chunk in body.iter_chunks(1024 * 1024):
                        hasher.update(chunk)
                        size += len(chunk)
                        fh.write(chunk)
                finally:
                    if deadlines.WATCH.disarm(token):
                        in_time(f"downloading s3://{bucket}/{key}")
            except ClientError as exc:
                if is_not_found(exc):
                    raise CacheLayoutError(
                        f"blob {blob.digest} is missing from the bucket"
                    ) from exc
                raise s3_error(f"downloading s3://{bucket}/{key}", exc) from exc
            except BotoCoreError as exc:
                raise s3_error(f"downloading s3://{bucket}/{key}", exc) from exc
        actual = f"{algo}:{hasher.hexdigest()}"
        if size != blob.size or actual != blob.digest:
            raise CacheLayoutError(
                f"blob {blob.digest} in the bucket is corrupt ({size} bytes, {actual})"
            )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _body_socket(body: Any) -> Any:
    """The socket under a botocore StreamingBody (urllib3 response), if it can be found."""
    raw = getattr(body, "_raw_stream", None)
    conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    return getattr(conn, "sock", None)


def _clear(dest: Path) -> None:
    """Empty `dest` (it was empty when the import started, so everything here is ours)."""
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def dir_writer(root: Path) -> Writer:
    """A layout Writer into a directory: atomic (temp file + rename), never outside `root`."""
    base = Path(root)

    def write(relpath: str, data: bytes) -> None:
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"refusing to write outside the layout: {relpath!r}")
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)

    return write
