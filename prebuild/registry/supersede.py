"""Delete what a push left untagged: the previous cache manifest, a rebuilt key tag's old index.

Every cache export re-points `buildcache`, and a refresh re-points the key tag: the manifest
they named stays in the registry, untagged, and distribution's plain `garbage-collect` keeps
the blobs of every manifest it can still enumerate. Its `--delete-untagged` would reclaim them
but, on distribution 2.8, also deletes the (untagged) per-platform children of every
multi-platform index (distribution#3178), leaving kept tags unpullable. So prebuild deletes
exactly the manifests it superseded, by digest, and the registry's GC runs without that flag.

A digest is deleted only when, after the push, no tag of the repository names it and no
tagged index lists it (a delete by digest removes every tag on it); an index's children go
with it under the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prebuild.errors import RegistryError
from prebuild.registry.client import RegistryClient
from prebuild.registry.refs import ImageRef

WORKERS = 8


@dataclass
class Superseded:
    """What one cleanup deleted, and what it left because something still uses it."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refused: bool = False


def current(client: RegistryClient, refs: Iterable[str]) -> dict[str, str]:
    """tag ref -> digest it points at now (absent tags left out): asked before a push."""
    wanted = list(dict.fromkeys(refs))
    with ThreadPoolExecutor(WORKERS) as pool:
        heads = list(pool.map(lambda r: client.head_manifest(ImageRef.parse(r)), wanted))
    return {ref: head.digest for ref, head in zip(wanted, heads, strict=True) if head}


def children(client: RegistryClient, repo: ImageRef, digest: str) -> list[str]:
    """The manifests an index lists (none for an image manifest or a missing one)."""
    manifest = client.get_manifest(repo.with_digest(digest))
    if manifest is None or not manifest.is_index:
        return []
    return [
        e["digest"]
        for e in manifest.json.get("manifests") or []
        if isinstance(e, dict) and isinstance(e.get("digest"), str)
    ]


def in_use(client: RegistryClient, repo: ImageRef) -> set[str]:
    """Every digest a tag of `repo` names, directly or as a child of a tagged index."""
    tags = client.list_tags(repo)
    with ThreadPoolExecutor(WORKERS) as pool:
        heads = list(pool.map(lambda t: client.head_manifest(repo.with_tag(t)), tags))
        tops = sorted({h.digest for h in heads if h is not None})
        nested = list(pool.map(lambda d: children(client, repo, d), tops))
    return set(tops) | {child for group in nested for child in group}


def cleanup(
    client: RegistryClient, before: Mapping[str, str], *, after: Mapping[str, str] | None = None
) -> Superseded:
    """Delete the digests `before` named that no tag uses any more (plus their children).

    `after` (tag ref -> digest now) skips the work when nothing moved; None: ask again.
    """
    after = current(client, before) if after is None else after
    moved = {ref: d for ref, d in before.items() if after.get(ref) != d}
    outcome = Superseded()
    by_repo: dict[str, tuple[ImageRef, set[str]]] = {}
    for ref, digest in moved.items():
        repo = ImageRef.parse(ref).repository_ref
        by_repo.setdefault(str(repo), (repo, set()))[1].add(digest)
    for repo, digests in by_repo.values():
        used = in_use(client, repo)
        for digest in sorted(digests):
            for item in [digest, *children(client, repo, digest)]:
                if item in outcome.deleted:  # shared by two superseded indexes
                    continue
                if item in used:
                    outcome.kept.append(item)
                    continue
                try:
                    if not client.delete_manifest(repo, item):
                        outcome.refused = True
                        return outcome
                except RegistryError:
                    outcome.kept.append(item)
                    continue
                outcome.deleted.append(item)
    return outcome
