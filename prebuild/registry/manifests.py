"""What the registry client returns about manifests, and when an image says it was built."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prebuild.registry.media_types import INDEX_TYPES
from prebuild.registry.refs import ImageRef

CREATED = "org.opencontainers.image.created"  # annotation


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int | None


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    raw: bytes
    json: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.json


@dataclass(frozen=True)
class Resolved:
    """What a ref points at now: the tag's digest and, for an index, the platform's manifest."""

    ref: ImageRef
    platform: str
    digest: str  # what the tag points at (index or manifest)
    media_type: str
    platform_digest: str  # the platform's image manifest; == digest for single-platform images
    is_index: bool

    @property
    def pinned(self) -> ImageRef:
        return self.ref.with_digest(self.digest)


def parse_created(value: Any) -> datetime | None:
    """RFC 3339 -> aware datetime (UTC if no offset). None if absent, garbage, or at/before
    the Unix epoch: reproducible builds (SOURCE_DATE_EPOCH=0) and docker's zero time
    record no real build time."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed if parsed.timestamp() > 0 else None


def created_annotation(obj: dict[str, Any]) -> datetime | None:
    annotations = obj.get("annotations")
    return parse_created(annotations.get(CREATED)) if isinstance(annotations, dict) else None
