"""What the nightly's images and caches occupy: per-image sizes, registry and S3 totals.

The registry API has no "disk used" call, so registry storage is the sum of the distinct
blobs (manifests, configs, layers) that the project's tags reference, across every image's
repository; blobs shared between tags or images count once, as the registry stores them once.
S3 storage is the sum of the objects under each cache prefix. Measuring never fails a run:
an unanswered question is reported as None.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prebuild.errors import PrebuildError
from prebuild.model import Project, S3Settings
from prebuild.registry.client import RegistryClient
from prebuild.registry.refs import ImageRef

PARALLEL = 8


@dataclass
class Storage:
    registry: int | None = None
    s3: int | None = None  # None: no S3 cache configured (or it did not answer)

    def as_json(self) -> dict[str, int | None]:
        return {"registry": self.registry, "s3": self.s3}


@dataclass
class Blobs:
    """What one tag references: its manifests (index included) and its configs and layers."""

    manifests: dict[str, int] = field(default_factory=dict)
    content: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The image's size as users know it: configs and layers, every platform."""
        return sum(self.content.values())


def blobs_of(client: RegistryClient, ref: ImageRef, into: Blobs | None = None) -> Blobs:
    """Everything a tag references (an index: every platform's image too)."""
    found = into or Blobs()
    manifest = client.get_manifest(ref)
    if manifest is None:
        return found
    found.manifests[manifest.digest] = len(manifest.raw)
    if manifest.is_index:
        for entry in manifest.json.get("manifests") or []:
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
                blobs_of(client, ref.with_digest(entry["digest"]), found)
        return found
    for desc in [manifest.json.get("config"), *(manifest.json.get("layers") or [])]:
        if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
            found.content[desc["digest"]] = int(desc.get("size") or 0)
    return found


def image_sizes(client: RegistryClient, refs: Iterable[str]) -> dict[str, int]:
    """ref -> size of the images just pushed (missing when the registry does not answer)."""
    refs = list(refs)

    def size(ref: str) -> int | None:
        try:
            return blobs_of(client, ImageRef.parse(ref)).size
        except (PrebuildError, ValueError):
            return None

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        sizes = list(pool.map(size, refs))
    return {ref: n for ref, n in zip(refs, sizes, strict=True) if n is not None}


def measure(project: Project, client: RegistryClient) -> Storage:
    """Registry total over every tag of the images' repositories (caches included), S3 total."""
    storage = Storage()
    repos = [f"{project.settings.registry}/{spec.name}" for spec in project.images]
    try:

        def tags_of(repo: str) -> list[ImageRef]:
            repository = ImageRef.parse(repo, default_tag=None).repository_ref
            return [repository.with_tag(tag) for tag in client.list_tags(repository)]

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:  # 500 repos: not one by one
            tags = [tag for listed in pool.map(tags_of, repos) for tag in listed]
            found = list(pool.map(lambda r: blobs_of(client, r), tags))
        every: dict[str, int] = {}
        for blobs in found:
            every.update(blobs.manifests)
            every.update(blobs.content)
        storage.registry = sum(every.values())
    except (PrebuildError, ValueError):
        pass
    storage.s3 = s3_bytes(_s3_locations(project))
    return storage


def _s3_locations(project: Project) -> list[S3Settings]:
    seen: dict[tuple[str, str | None, str], S3Settings] = {}
    for spec in project.images:
        s3 = spec.cache.s3
        if spec.cache.backend in ("s3", "s3-sync") and s3 is not None:
            seen.setdefault((s3.bucket, s3.endpoint_url, s3.prefix), s3)
    return list(seen.values())


def s3_bytes(locations: list[S3Settings]) -> int | None:
    if not locations:
        return None
    from prebuild.cache.s3.client import make_client  # boto3: only when an S3 cache exists

    total = 0
    try:
        for s3 in locations:
            client: Any = make_client(s3)
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=s3.bucket, Prefix=s3.prefix
            )
            total += sum(o["Size"] for page in pages for o in page.get("Contents", []))
    except Exception:  # boto3's errors are many; an unmeasured bucket is reported as None
        return None
    return total
