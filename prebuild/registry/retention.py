"""Registry retention: delete old key tags, never anything a moving tag or cache ref still needs.

Only key tags (TAG_LENGTH lowercase hex, see keys.tag_for) are ever candidates. The OCI
distribution API deletes by manifest digest, which untags EVERY tag pointing at it, so a digest
is deleted only when no kept or protected tag shares it. Deleting a manifest frees no storage by
itself: the registry's own garbage collection reclaims unreferenced blobs later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prebuild.durations import format_duration
from prebuild.errors import RegistryError
from prebuild.key.material import TAG_LENGTH
from prebuild.progress import Track, silent
from prebuild.registry.client import RegistryClient
from prebuild.registry.manifests import ManifestHead
from prebuild.registry.refs import ImageRef

WORKERS = 8
_KEY_TAG = re.compile(rf"[0-9a-f]{{{TAG_LENGTH}}}")
# A split build's platform tag: KEYTAG-os-arch[-variant] (build/split.py).
_PLATFORM_TAG = re.compile(rf"(?P<key>[0-9a-f]{{{TAG_LENGTH}}})-[a-z0-9]+(?:-[a-z0-9]+)+")
# Without --delete-untagged: prebuild deletes what it superseded itself (old cache manifests,
# the per-platform manifests of the indexes it deletes), and distribution 2.8's
# --delete-untagged would delete the untagged children of every multi-platform index
# (distribution#3178), leaving kept tags unpullable.
STORAGE_NOTE = (
    "deleting manifests frees no storage until the registry's own garbage collection runs "
    "(distribution: `registry garbage-collect CONFIG`, registry stopped or read-only; do not "
    "add --delete-untagged on distribution 2.8: it breaks multi-platform images)"
)


def is_key_tag(tag: str) -> bool:
    """A content-key tag (keys.tag_for): the only kind gc may delete."""
    return _KEY_TAG.fullmatch(tag) is not None


def platform_tag_key(tag: str) -> str | None:
    """The key tag a split build's platform tag belongs to (None: not a platform tag)."""
    match = _PLATFORM_TAG.fullmatch(tag)
    return match["key"] if match else None


@dataclass(frozen=True)
class TagInfo:
    """One tag as gc saw it. `size` = manifest + config + layers (all of an index's images)."""

    tag: str
    digest: str
    created: datetime | None
    size: int
    # digest -> size of every blob/manifest the tag's manifest names (for bytes_freed)
    blobs: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    # the manifests an index lists: deleted with it (nothing else keeps them, see below)
    children: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def as_json(self) -> dict[str, Any]:
        created = self.created.isoformat() if self.created else None
        return {"tag": self.tag, "digest": self.digest, "created": created, "size": self.size}


@dataclass
class RegistryGcReport:
    """Outcome for one repository; on a dry run `deleted` is what WOULD be deleted."""

    image: str
    kept: list[tuple[str, str]]  # (tag, why)
    deleted: list[TagInfo]
    refused: bool  # the registry refused deletes (405 / UNSUPPORTED): reported, not an error
    bytes_freed: int  # approximate: deleted manifests' blobs that no kept manifest names
    dry_run: bool
    not_deleted: list[TagInfo] = field(default_factory=list)  # chosen, left after a refusal
    children_deleted: list[str] = field(default_factory=list)  # per-platform manifests
    # digest -> size of every blob the tags left in place name: what the repository stores
    kept_blobs: dict[str, int] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "dry_run": self.dry_run,
            "kept": [{"tag": tag, "why": why} for tag, why in self.kept],
            "deleted": [info.as_json() for info in self.deleted],
            "not_deleted": [info.as_json() for info in self.not_deleted],
            "refused": self.refused,
            "bytes_freed": self.bytes_freed,
            "children_deleted": self.children_deleted,
        }


# -- policy ---------------------------------------------------------------------------------


def plan_retention(
    tags: list[TagInfo],
    *,
    keep: int,
    max_age_seconds: int | None,
    protected_tags: set[str],
    now: datetime,
) -> tuple[list[tuple[str, str]], list[TagInfo]]:
    """(kept (tag, why), to delete) for one repository. Pure: no I/O.

    Kept: every non-key or protected tag; key tags of unknown age; the newest `keep` key tags;
    key tags younger than `max_age_seconds`; and any tag sharing a digest with a kept one.
    Returned in a stable order: other tags by name, then key tags newest first; deletions
    oldest first.
    """
    if keep < 0:
        raise ValueError("keep must be >= 0")
    why: dict[str, str] = {}
    candidates: list[TagInfo] = []
    key_tags = {info.tag for info in tags if is_key_tag(info.tag)}
    following: list[TagInfo] = []  # platform tags of a present key tag: its fate is theirs
    for info in tags:
        if platform_tag_key(info.tag) in key_tags:
            following.append(info)
        elif not is_key_tag(info.tag):
            why[info.tag] = "moving tag" if info.tag in protected_tags else "not a key tag"
        elif info.tag in protected_tags:
            why[info.tag] = "protected tag"
        elif info.created is None:
            why[info.tag] = "created time unknown"
        else:
            candidates.append(info)
    candidates.sort(key=_newest_first)
    doomed: list[TagInfo] = []
    for rank, info in enumerate(candidates):
        assert info.created is not None
        age = (_aware(now) - _aware(info.created)).total_seconds()
        if rank < keep:
            why[info.tag] = f"newest {keep}"
        elif max_age_seconds is not None and age < max_age_seconds:
            why[info.tag] = f"younger than {format_duration(max_age_seconds)}"
        else:
            doomed.append(info)
    # A delete removes every tag of the digest: a kept tag's digest must survive.
    holders: dict[str, str] = {}
    for info in sorted((i for i in tags if i.tag in why), key=_holder_preference):
        holders.setdefault(info.digest, info.tag)
    deleted: list[TagInfo] = []
    for info in doomed:
        if info.digest in holders:
            why[info.tag] = f"same manifest as '{holders[info.digest]}'"
        else:
            deleted.append(info)
    for info in following:  # a doomed key tag's platform tags go with its index's children
        key = platform_tag_key(info.tag) or ""
        if key in why:
            why[info.tag] = f"platform tag of '{key}'"
    order = {info.tag: i for i, info in enumerate(sorted(tags, key=_report_order))}
    kept = sorted(why.items(), key=lambda item: order[item[0]])
    deleted.sort(key=_newest_first, reverse=True)
    return kept, deleted


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _newest_first(info: TagInfo) -> tuple[float, str]:
    created = info.created.timestamp() if info.created else float("-inf")  # unknown: last
    return (-created, info.tag)


def _holder_preference(info: TagInfo) -> tuple[bool, str]:
    """Name a moving tag ('latest') rather than another key tag when explaining a shared digest."""
    return (is_key_tag(info.tag), info.tag)


def _report_order(info: TagInfo) -> tuple[bool, float, str]:
    key_tag = is_key_tag(info.tag)
    return (key_tag, _newest_first(info)[0] if key_tag else 0.0, info.tag)


def bytes_freed(deleted: Iterable[TagInfo], kept: Iterable[TagInfo]) -> int:
    """Bytes of the deleted manifests' blobs that no kept manifest names (each blob once)."""
    shared = {digest for info in kept for digest, _ in info.blobs}
    freed = {d: size for info in deleted for d, size in info.blobs if d not in shared}
    return sum(freed.values())


# -- against a registry ---------------------------------------------------------------------

# (created, blobs: digest -> size, children: the manifests an index lists)
_Inspected = tuple[datetime | None, tuple[tuple[str, int], ...], tuple[str, ...]]


def collect(
    client: RegistryClient,
    repository: ImageRef,
    *,
    keep: int,
    max_age_seconds: int | None,
    protected_tags: set[str],
    apply: bool,
    now: datetime | None = None,
    track: Track = silent,
) -> RegistryGcReport:
    """Inspect every tag of `repository`, apply the policy, delete (only when `apply`).

    A refusal stops further deletes for this repository and is reported; any other
    RegistryError propagates. `track` shows the progress of the tag and manifest requests.
    """
    repo = repository.repository_ref
    clock = now or datetime.now(UTC)
    with ThreadPoolExecutor(WORKERS) as pool:
        tags = client.list_tags(repo)
        step = track(f"gc {repo.name}: tags", len(tags))

        def head(tag: str) -> ManifestHead | None:
            found = client.head_manifest(repo.with_tag(tag))
            step.advance()
            return found

        heads = list(pool.map(head, tags))
        step.finish()
        digest_of = {tag: head.digest for tag, head in zip(tags, heads, strict=True) if head}
        # Creation time matters only for deletion candidates: skip it for the others.
        dated = {d for t, d in digest_of.items() if is_key_tag(t) and t not in protected_tags}
        digests = sorted(set(digest_of.values()))
        step = track(f"gc {repo.name}: manifests", len(digests))

        def inspect(digest: str) -> _Inspected:
            found = _inspect(client, repo, digest, digest in dated)
            step.advance()
            return found

        inspected = list(pool.map(inspect, digests))
        step.finish()
    by_digest = dict(zip(digests, inspected, strict=True))
    infos = []
    for tag, digest in digest_of.items():
        created, blobs, kids = by_digest[digest]
        size = sum(n for _, n in blobs)
        infos.append(TagInfo(tag, digest, created, size, blobs, kids))
    kept, doomed = plan_retention(
        infos, keep=keep, max_age_seconds=max_age_seconds, protected_tags=protected_tags, now=clock
    )
    deleted, left, refused = (doomed, [], False) if not apply else _delete(client, repo, doomed)
    kept_tags = {tag for tag, _ in kept}
    kept_infos = [info for info in infos if info.tag in kept_tags]
    orphans = _orphaned_children(deleted, kept_infos + left)
    gone = orphans if not apply or refused else _delete_children(client, repo, orphans)
    return RegistryGcReport(
        image=repo.name,
        kept=kept,
        deleted=deleted,
        refused=refused,
        bytes_freed=bytes_freed(deleted, kept_infos + left),
        dry_run=not apply,
        not_deleted=left,
        children_deleted=gone,
        kept_blobs={d: size for info in kept_infos + left for d, size in info.blobs},
    )


def _orphaned_children(deleted: Iterable[TagInfo], kept: Iterable[TagInfo]) -> list[str]:
    """The per-platform manifests of deleted indexes that no kept tag names or lists.

    Untagged, they would keep their layers alive through a plain registry GC forever; the GC
    that deletes untagged manifests also breaks every kept index on distribution 2.8.
    """
    used = {d for info in kept for d in (info.digest, *info.children)}
    found = {c: None for info in deleted for c in info.children if c not in used}
    return list(found)


def _delete_children(client: RegistryClient, repo: ImageRef, digests: list[str]) -> list[str]:
    done = []
    for digest in digests:
        if not client.delete_manifest(repo, digest):
            break
        done.append(digest)
    return done


def _delete(
    client: RegistryClient, repo: ImageRef, doomed: list[TagInfo]
) -> tuple[list[TagInfo], list[TagInfo], bool]:
    """(deleted, left, refused): one DELETE per digest, stopping at the first refusal."""
    done: set[str] = set()
    refused = False
    for info in doomed:
        if info.digest not in done:
            if not client.delete_manifest(repo, info.digest):
                refused = True
                break
            done.add(info.digest)
    deleted = [info for info in doomed if info.digest in done]
    return deleted, [info for info in doomed if info.digest not in done], refused


def _inspect(client: RegistryClient, repo: ImageRef, digest: str, want_created: bool) -> _Inspected:
    """(created, blobs, children) of one manifest digest; an index counts all its manifests'
    blobs, and lists them as children."""
    ref = repo.with_digest(digest)
    manifest = client.get_manifest(ref)
    if manifest is None:  # deleted meanwhile: nothing to free, and no age to judge by
        return None, (), ()
    blobs: dict[str, int] = {digest: len(manifest.raw)}
    children: list[str] = []
    if manifest.is_index:
        for entry in manifest.json.get("manifests") or []:
            child_digest = entry.get("digest") if isinstance(entry, dict) else None
            if not isinstance(child_digest, str):
                continue
            children.append(child_digest)
            child = client.get_manifest(repo.with_digest(child_digest))
            if child is not None:
                blobs[child.digest] = len(child.raw)
                blobs.update(_descriptors(child.json))
    else:
        blobs.update(_descriptors(manifest.json))
    created = _created(client, ref) if want_created else None
    return created, tuple(blobs.items()), tuple(children)


def _created(client: RegistryClient, ref: ImageRef) -> datetime | None:
    """image_created, with a permanent failure (e.g. an index of attestations only) read as
    "unknown", which keeps the tag; transient failures propagate."""
    try:
        return client.image_created(ref)
    except RegistryError as exc:
        if exc.transient:
            raise
        return None


def _descriptors(manifest: dict[str, Any]) -> dict[str, int]:
    """digest -> size of an image manifest's config and layers (sizes from the descriptors)."""
    found: dict[str, int] = {}
    for desc in [manifest.get("config"), *(manifest.get("layers") or [])]:
        if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
            size = desc.get("size")
            found[desc["digest"]] = size if isinstance(size, int) and size >= 0 else 0
    return found
