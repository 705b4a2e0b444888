"""The nightly report history: every run's JSON report, kept where the next run finds it.

Nightly machines are ephemeral, so the history lives next to the images. The default needs
no setting: an OCI artifact per run in the registry the images go to
(`REGISTRY/prebuild-history:<UTC time>`), readable with the same credentials. `[history]
store = "s3"` keeps it in the S3 cache bucket instead, `"dir"` in a directory (a runner with
a persistent disk, or tests). Entries are pruned by the images' retention (`[gc] keep` newest,
plus any younger than `[gc] max_age`) each time one is written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from prebuild.errors import PrebuildError, UsageError
from prebuild.model import Project
from prebuild.registry.media_types import PREBUILD_REPORT as MEDIA_TYPE
from prebuild.registry.refs import ImageRef

REPOSITORY = "prebuild-history"
ENTRY = re.compile(r"^\d{8}T\d{6}\.\d{3}Z$")  # UTC times to the millisecond: sorted by age


def entry_name(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y%m%dT%H%M%S.") + f"{when.microsecond // 1000:03d}Z"


def entry_time(name: str) -> datetime:
    return datetime.strptime(name, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


class Store(Protocol):
    where: str

    def names(self) -> list[str]: ...
    def read(self, name: str) -> dict[str, Any]: ...
    def write(self, name: str, data: bytes) -> None: ...
    def delete(self, name: str) -> None: ...


class DirStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.stem for p in self.path.glob("*.json") if ENTRY.match(p.stem))

    def read(self, name: str) -> dict[str, Any]:
        return _load(self.path / f"{name}.json", (self.path / f"{name}.json").read_bytes())

    def write(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, self.path / f"{name}.json")

    def delete(self, name: str) -> None:
        (self.path / f"{name}.json").unlink(missing_ok=True)


class RegistryStore:
    def __init__(self, project: Project, repository: str) -> None:
        from prebuild.plan.planner import make_client

        self.client = make_client(project)
        self.repo = ImageRef.parse(repository, default_tag=None).repository_ref
        self.where = repository

    def names(self) -> list[str]:
        return sorted(t for t in self.client.list_tags(self.repo) if ENTRY.match(t))

    def read(self, name: str) -> dict[str, Any]:
        manifest = self.client.get_manifest(self.repo.with_tag(name))
        layers = (manifest.json.get("layers") if manifest else None) or [{}]
        digest = layers[0].get("digest")
        if not isinstance(digest, str):
            raise PrebuildError(f"{self.where}:{name}: not a prebuild report artifact")
        return _load(f"{self.where}:{name}", self.client.get_blob(self.repo, digest))

    def write(self, name: str, data: bytes) -> None:
        from prebuild.registry.upload import push_json_artifact

        created = entry_time(name).strftime("%Y-%m-%dT%H:%M:%SZ")
        push_json_artifact(
            self.client,
            self.repo.with_tag(name),
            data,
            media_type=MEDIA_TYPE,
            annotations={"org.opencontainers.image.created": created},
        )

    def delete(self, name: str) -> None:
        head = self.client.head_manifest(self.repo.with_tag(name))
        if head is not None:
            self.client.delete_manifest(self.repo, head.digest)


class S3Store:
    def __init__(self, project: Project) -> None:
        from prebuild.cache.s3.client import make_client

        s3 = next((s.cache.s3 for s in project.images if s.cache.s3 is not None), None)
        if s3 is None:
            raise UsageError(
                f'{project.config_file}: [history] store = "s3" needs a [cache.s3] bucket'
            )
        self.client = make_client(s3)
        self.bucket = s3.bucket
        self.prefix = f"{s3.prefix}{REPOSITORY}/"
        self.where = f"s3://{self.bucket}/{self.prefix}"

    def names(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        keys = (o["Key"] for page in pages for o in page.get("Contents", []))
        stems = (k[len(self.prefix) :].removesuffix(".json") for k in keys)
        return sorted(s for s in stems if ENTRY.match(s))

    def read(self, name: str) -> dict[str, Any]:
        body = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}{name}.json")
        return _load(f"{self.where}{name}.json", body["Body"].read())

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=f"{self.prefix}{name}.json", Body=data,
            ContentType="application/json",
        )  # fmt: skip

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"{self.prefix}{name}.json")


def open_store(project: Project) -> Store:
    """The store the config names (default: the registry's prebuild-history repository)."""
    history = project.settings.history
    if history.store == "dir":
        return DirStore(history.path or project.repo_root / ".prebuild" / "history")
    if history.store == "s3":
        return S3Store(project)
    return RegistryStore(project, f"{project.settings.registry}/{REPOSITORY}")


def _load(where: object, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise PrebuildError(f"{where}: report is not valid JSON") from None
    if not isinstance(doc, dict):
        raise PrebuildError(f"{where}: report is not a JSON object")
    return doc


def retained(
    names: list[str], *, keep: int, max_age_seconds: int | None, now: datetime
) -> set[str]:
    """What the images' retention keeps: the newest `keep`, plus all younger than max_age."""
    kept = set(sorted(names)[-keep:]) if keep > 0 else set()
    if max_age_seconds is not None:
        kept |= {n for n in names if (now - entry_time(n)).total_seconds() < max_age_seconds}
    return kept


def record(project: Project, store: Store, doc: dict[str, Any], *, now: datetime) -> list[str]:
    """Write this run's report, then prune by retention; returns the names pruned."""
    name = entry_name(now)
    store.write(name, json.dumps(doc, sort_keys=True).encode())
    names = store.names()
    settings = project.settings
    keep = retained(names, keep=settings.keep, max_age_seconds=settings.max_age_seconds, now=now)
    pruned = [n for n in names if n not in keep and n != name]
    for old in pruned:
        store.delete(old)
    return pruned


def amend_latest(store: Store, changes: dict[str, Any]) -> str | None:
    """Update the newest report in place (gc adds the storage it leaves); its name."""
    names = store.names()
    if not names:
        return None
    doc = store.read(names[-1])
    doc.update(changes)
    store.write(names[-1], json.dumps(doc, sort_keys=True).encode())
    return names[-1]


def newest_first(store: Store) -> Iterator[tuple[str, dict[str, Any]]]:
    """Reports from the newest back; unreadable ones are skipped, never fatal."""
    for name in reversed(store.names()):
        try:
            yield name, store.read(name)
        except PrebuildError:
            continue


def load_all(store: Store) -> list[dict[str, Any]]:
    """Every kept report, oldest first (for trends)."""
    return list(reversed([doc for _, doc in newest_first(store)]))
