"""The S3 client the cache uses, and what its failures mean to a user.

Credentials come only from the environment / AWS config chain; botocore's messages never carry
them, so its error codes can be shown as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from prebuild import deadline as deadlines
from prebuild.cache.s3 import watch
from prebuild.cache.s3.format import S3CacheError
from prebuild.model import S3Settings

S3Client = Any  # a boto3 S3 client (kept untyped so boto3 stubs stay optional)

RETRY_MAX_ATTEMPTS = 3  # per call, first try included ("standard" mode: backoff, bounded)
CONNECT_TIMEOUT = 5.0  # seconds; capped by what the command's deadline leaves
READ_TIMEOUT = 30.0  # seconds without a byte from S3 before the attempt fails
TRANSFER_CONCURRENCY = 4  # multipart threads per blob (big layers)
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_AUTH = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_TRANSIENT = {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "InternalError"}


def make_client(settings: S3Settings) -> S3Client:
    """An S3 client for `settings`; credentials ONLY from the environment / AWS config chain.
    Its timeouts never exceed what the command's deadline leaves when it is made."""
    budget = deadlines.current()
    config = Config(
        region_name=settings.region,
        s3={"addressing_style": "path" if settings.use_path_style else "auto"},
        retries={"mode": "standard", "total_max_attempts": RETRY_MAX_ATTEMPTS},
        connect_timeout=max(0.5, budget.cap(CONNECT_TIMEOUT) or CONNECT_TIMEOUT),
        read_timeout=max(0.5, budget.cap(READ_TIMEOUT) or READ_TIMEOUT),
        max_pool_connections=max(10, settings.upload_parallelism * (TRANSFER_CONCURRENCY + 1)),
        # s3.go does the same (RequestChecksumCalculationWhenRequired): many S3-compatible
        # stores reject the CRC checksums recent botocore adds to every upload by default.
        request_checksum_calculation="when_required",
    )
    session = boto3.session.Session()  # own session: boto3's module-level default is shared state
    client = session.client("s3", endpoint_url=settings.endpoint_url or None, config=config)
    client.meta.events.register("before-send.s3", _refuse_late)  # botocore's retries too
    watch.guard(client)  # and a trickled answer ends at the deadline
    return client


def _refuse_late(**_: Any) -> None:
    """Before every attempt, first or retried: none starts once the deadline has passed."""
    in_time("request")


def in_time(what: str) -> None:
    """Refuse to start an S3 call once the command's deadline has passed."""
    budget = deadlines.current()
    if budget.expired():
        raise S3CacheError(f"S3 {what}: out of time ({budget.describe()})", transient=True)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in _NOT_FOUND


def s3_error(action: str, exc: BaseException) -> S3CacheError:
    """A user-facing error for a failed S3 call (botocore messages never carry credentials)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, S3UploadFailedError) and isinstance(cause, ClientError | BotoCoreError):
        exc = cause  # boto3's managed upload wraps the real error
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        hint = None
        if code in _AUTH:
            hint = "check the bucket policy and the AWS credentials in the environment"
        elif code == "NoSuchBucket":
            hint = "check the bucket name, region and endpoint_url"
        transient = status >= 500 or code in _TRANSIENT
        return S3CacheError(f"S3 {action} failed: {code or status}", transient=transient, hint=hint)
    if isinstance(exc, NoCredentialsError):
        return S3CacheError(
            f"S3 {action} failed: no AWS credentials found",
            hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (never in the config)",
        )
    return S3CacheError(
        f"S3 {action} failed: {exc}",
        transient=isinstance(exc, BotoConnectionError | HTTPClientError),
    )


def as_utc(when: datetime) -> datetime:
    """S3 dates are aware; a naive `now` from a caller is taken as UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
