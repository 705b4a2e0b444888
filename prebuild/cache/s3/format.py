"""The vocabulary both BuildKit cache layouts share: media types, annotations, digests, the
s3 cache's key names, the cache error types, and Go-compatible JSON and time encoding.

Why a module of its own: s3gc and s3sync need the keys and digests without the layout
conversions, and the conversions in s3layout (whose docstring lists the BuildKit sources these
follow) build on them. Every name here is also importable from prebuild.cache.s3.layout.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from prebuild.errors import PrebuildError
from prebuild.model import S3Settings

LABEL_UNCOMPRESSED = "containerd.io/uncompressed"
ANNOTATION_CREATED_AT = "buildkit/createdat"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
BLOBS_PREFIX = "blobs/"  # s3.go default blobs_prefix
MANIFESTS_PREFIX = "manifests/"  # s3.go default manifests_prefix
DEFAULT_TAG = "latest"  # buildkit client default tag for type=local
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # json.Marshal of a zero time.Time
OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}

_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


class S3CacheError(PrebuildError):
    """The S3 cache could not be read or written; `transient` ones may succeed on a retry."""

    def __init__(self, message: str, *, transient: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient


class CacheLayoutError(S3CacheError):
    """A layout or cache manifest is not what BuildKit writes: never build on it."""


@dataclass(frozen=True)
class BlobRef:
    """A content blob a cache manifest needs (a compressed layer)."""

    digest: str
    size: int
    media_type: str


def is_digest(value: object) -> TypeGuard[str]:
    """True for a sha256/sha512 digest string; narrows `value` to str for the caller."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def check_digest(value: object, what: str) -> str:
    """Digests end up in S3 keys and file paths: anything else is refused, not escaped."""
    if not isinstance(value, str) or _DIGEST.fullmatch(value) is None:
        raise CacheLayoutError(f"{what}: {value!r} is not a sha256/sha512 digest")
    return value


def digest_of(data: bytes, algo: str = "sha256") -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


def blob_relpath(digest: str) -> str:
    """Where an OCI layout (containerd local content store) keeps a blob."""
    algo, hexpart = check_digest(digest, "blob").split(":", 1)
    return f"blobs/{algo}/{hexpart}"


def blobs_prefix(settings: S3Settings) -> str:
    return settings.prefix + BLOBS_PREFIX


def manifests_prefix(settings: S3Settings) -> str:
    return settings.prefix + MANIFESTS_PREFIX


def blob_key(settings: S3Settings, digest: str) -> str:
    """s3.go blobKey: prefix + blobs_prefix + digest ("sha256:<hex>", colon included)."""
    return blobs_prefix(settings) + check_digest(digest, "blob")


def manifest_key(settings: S3Settings, name: str) -> str:
    """s3.go manifestKey: prefix + manifests_prefix + name."""
    if not name or ";" in name:
        raise ValueError(f"invalid cache manifest name {name!r}")
    return manifests_prefix(settings) + name


def manifest_names(name: str) -> list[str]:
    """BuildKit's `name` attribute: ";"-separated; export writes all, import reads the first."""
    names = [n for n in name.split(";") if n]
    if not names:
        raise ValueError(f"invalid cache manifest name {name!r}")
    return names


def encode_json(obj: Any) -> bytes:
    """Compact like Go's json.Marshal (key order is kept from the input)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def go_utc_time(text: str) -> str:
    """RFC 3339 -> what Go marshals for t.UTC(): nanoseconds kept, trailing zeros trimmed, "Z"."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise CacheLayoutError(f"invalid timestamp {text!r}")
    base, frac, zone = match.groups()
    try:
        stamp = datetime.fromisoformat(base)
        if zone != "Z":
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            stamp = stamp - offset if zone[0] == "+" else stamp + offset
    except (ValueError, OverflowError) as exc:
        raise CacheLayoutError(f"invalid timestamp {text!r}") from exc
    frac = (frac or "").rstrip("0")
    return stamp.isoformat(timespec="seconds") + (f".{frac}" if frac else "") + "Z"
