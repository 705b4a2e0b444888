"""Storage accounting for P5: what the registry and the S3 cache hold vs what is still live.

*Stored* is what occupies disk or the bucket: every blob file of the filesystem registry that
one of the series' repositories links (layers and manifest revisions; a blob the registry's
garbage collection removed has no data file any more and no longer counts), plus every
object under the series' S3 prefix.

*Live* is what the retention policy wants kept: the blobs of the tags `prebuild gc` would keep
(the newest `keep` key tags, `latest`, the registry cache tag; its own policy function decides)
plus, for S3, the current cache manifests and the blobs they name. The same definition is
applied to the series with and without gc, so stored/live is the overhead of garbage kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prebuild.cache.s3.layout import referenced_blobs
from prebuild.registry.client import RegistryClient
from prebuild.registry.refs import ImageRef
from prebuild.registry.retention import TagInfo, plan_retention


def registry_stored_bytes(root: Path, repositories: Iterable[str]) -> int:
    """Bytes of blob data files the repositories link (each blob once)."""
    digests: set[str] = set()
    for repository in repositories:
        base = root / "repositories" / repository
        for sub in ("_layers/sha256", "_manifests/revisions/sha256"):
            directory = base / sub
            if directory.is_dir():
                digests.update(entry.name for entry in directory.iterdir())
    total = 0
    for hexdigest in digests:
        data = root / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        try:
            total += data.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _descriptors(manifest: dict[str, Any]) -> dict[str, int]:
    found = {}
    for desc in [manifest.get("config"), *(manifest.get("layers") or [])]:
        if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
            found[desc["digest"]] = int(desc.get("size") or 0)
    return found


def _blobs(client: RegistryClient, repo: ImageRef, digest: str) -> dict[str, int]:
    """digest -> size of a manifest and everything it names (an index: its manifests too)."""
    manifest = client.get_manifest(repo.with_digest(digest))
    if manifest is None:
        return {}
    blobs = {digest: len(manifest.raw)}
    if manifest.is_index:
        for entry in manifest.json.get("manifests") or []:
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
                blobs.update(_blobs(client, repo, entry["digest"]))
    else:
        blobs.update(_descriptors(manifest.json))
    return blobs


def registry_live_bytes(
    client: RegistryClient, repository: str, *, keep: int, protected: set[str]
) -> int:
    """Bytes of the blobs of the tags gc's retention keeps (max_age unset, as in P5)."""
    repo = ImageRef.parse(repository, default_tag=None).repository_ref
    infos: list[TagInfo] = []
    blobs: dict[str, dict[str, int]] = {}
    for tag in client.list_tags(repo):
        head = client.head_manifest(repo.with_tag(tag))
        if head is None:
            continue
        if head.digest not in blobs:
            blobs[head.digest] = _blobs(client, repo, head.digest)
        created = None
        if tag not in protected:
            try:
                created = client.image_created(repo.with_tag(tag))
            except Exception:  # a cache manifest has no image config: never a key tag anyway
                created = None
        infos.append(TagInfo(tag, head.digest, created, sum(blobs[head.digest].values())))
    kept, _ = plan_retention(
        infos, keep=keep, max_age_seconds=None, protected_tags=protected, now=datetime.now(UTC)
    )
    kept_tags = {tag for tag, _ in kept}
    live: dict[str, int] = {}
    for info in infos:
        if info.tag in kept_tags:
            live.update(blobs[info.digest])
    return sum(live.values())


def s3_bytes(client: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """(stored, live) under an S3 cache prefix: all objects vs manifests + named blobs."""
    sizes: dict[str, int] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents") or []:
            sizes[obj["Key"]] = int(obj["Size"])
    live = 0
    for key, size in sizes.items():
        if key.startswith(prefix + "manifests/"):
            live += size
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            for digest in referenced_blobs(body):
                live += sizes.get(prefix + "blobs/" + digest, 0)
    return sum(sizes.values()), live
