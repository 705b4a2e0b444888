"""Cache backends: where an image's BuildKit cache lives, as buildx cache-from/cache-to entries.

One small interface for all of them. `registry` and `s3` are native BuildKit exporters;
`s3-sync` exports to a private local directory and syncs it with S3 around the build (so it
works with the default `docker` driver); `none` reads and writes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prebuild.durations import parse_duration
from prebuild.errors import ConfigError
from prebuild.model import CacheSettings, S3Settings
from prebuild.progress import Track, silent

Entry = dict[str, str]


@dataclass
class CacheSession:
    """The cache arguments for one build, plus work to do after a successful export."""

    cache_from: list[Entry] = field(default_factory=list)
    cache_to: Entry | None = None
    export_dir: Path | None = None  # s3-sync: where BuildKit writes the local cache
    notes: list[str] = field(default_factory=list)


def default_ref(registry: str, name: str) -> str:
    return f"{registry}/{name}:buildcache"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def registry_entries(
    settings: CacheSettings, *, registry: str, name: str, write: bool
) -> tuple[list[Entry], Entry | None]:
    ref = settings.ref or default_ref(registry, name)
    sources = [{"type": "registry", "ref": ref}]
    sources += [{"type": "registry", "ref": extra} for extra in settings.extra_from]
    if not write:
        return sources, None
    return sources, {
        "type": "registry",
        "ref": ref,
        "mode": settings.mode,
        "image-manifest": _flag(settings.image_manifest),
        "oci-mediatypes": _flag(settings.oci_mediatypes),
        "ignore-error": _flag(settings.ignore_error),
    }


def s3_attributes(s3: S3Settings, name: str) -> Entry:
    """BuildKit's `type=s3` options (cache/remotecache/s3): no credentials, ever — BuildKit
    reads them from its own environment / AWS config chain."""
    entry = {"type": "s3", "bucket": s3.bucket, "region": s3.region, "name": s3.name or name}
    if s3.endpoint_url:
        entry["endpoint_url"] = s3.endpoint_url
    if s3.use_path_style:
        entry["use_path_style"] = "true"
    if s3.prefix:
        entry["prefix"] = s3.prefix
    return entry


def go_duration(text: str) -> str:
    """A config duration ("2d", "1d12h") as Go's time.ParseDuration reads it ("172800s").

    BuildKit parses touch_refresh with ParseDuration, which has no "d"/"w" units, and silently
    falls back to 24h on anything it cannot read: passing "2d" through would be ignored.
    """
    return f"{parse_duration(text)}s"


def s3_entries(
    settings: CacheSettings, *, name: str, write: bool
) -> tuple[list[Entry], Entry | None]:
    if settings.s3 is None:
        raise ConfigError(
            "cache backend 's3' needs a [cache.s3] table with a bucket", key="cache.s3"
        )
    base = s3_attributes(settings.s3, name)
    if not write:
        return [base], None
    to = {**base, "mode": settings.mode, "ignore-error": _flag(settings.ignore_error)}
    if settings.s3.touch_refresh:
        to["touch_refresh"] = go_duration(settings.s3.touch_refresh)
    if settings.s3.upload_parallelism:
        to["upload_parallelism"] = str(settings.s3.upload_parallelism)
    return [base], to


def read_entries(settings: CacheSettings, *, registry: str, name: str) -> list[Entry]:
    """Native cache sources a read-only build may use (s3-sync needs a download first and
    `none` has none): what `session(..., write=False)` yields without any S3 work."""
    if settings.backend == "registry":
        return registry_entries(settings, registry=registry, name=name, write=False)[0]
    if settings.backend == "s3":
        return s3_entries(settings, name=name, write=False)[0]
    return []


NATIVE_S3_DRIVERS = ("docker-container", "remote", "kubernetes")


def check_builder(settings: CacheSettings, driver: str) -> None:
    """Fail before any work when the builder cannot use the configured cache.

    A ConfigError (exit 2, "nothing is built, pushed or deleted"): the configuration asks for
    something this builder cannot do, no retry will help.
    """
    if settings.backend == "s3" and driver not in NATIVE_S3_DRIVERS:
        raise ConfigError(
            f"cache backend 's3' needs a BuildKit builder that can export type=s3, but the "
            f"builder's driver is '{driver}' (the default docker driver has no s3 cache exporter)",
            hint="either point prebuild at a docker-container/remote/kubernetes builder "
            "(`docker buildx create --driver docker-container --name ci` then `--builder ci`), "
            'or set `backend = "s3-sync"`, which works with the docker driver',
            key="cache.backend",
        )


@contextmanager
def session(
    settings: CacheSettings, *, registry: str, name: str, write: bool, track: Track = silent
) -> Iterator[CacheSession]:
    """Cache arguments for one build; for s3-sync, a private temp dir imported before and
    (when `write`) exported to S3 by the caller through `finish`."""
    if settings.backend == "none":
        yield CacheSession()
    elif settings.backend == "registry":
        sources, to = registry_entries(settings, registry=registry, name=name, write=write)
        yield CacheSession(cache_from=sources, cache_to=to)
    elif settings.backend == "s3":
        sources, to = s3_entries(settings, name=name, write=write)
        yield CacheSession(cache_from=sources, cache_to=to)
    else:
        with tempfile.TemporaryDirectory(prefix="prebuild-cache-") as tmp:
            yield _s3_sync_session(settings, name=name, write=write, workdir=Path(tmp), track=track)


def _s3_sync_session(
    settings: CacheSettings, *, name: str, write: bool, workdir: Path, track: Track
) -> CacheSession:
    from prebuild.cache.s3 import client as s3_client
    from prebuild.cache.s3 import sync
    from prebuild.cache.s3.format import S3CacheError

    if settings.s3 is None:
        raise ConfigError(
            "cache backend 's3-sync' needs a [cache.s3] table with a bucket", key="cache.s3"
        )
    result = CacheSession()
    imported = workdir / "import"
    client = s3_client.make_client(settings.s3)
    try:
        found = sync.import_from_s3(
            settings.s3, settings.s3.name or name, imported, client=client, track=track
        )
    except S3CacheError as error:  # S3 down or slow: a cold build still builds the image
        result.notes.append(f"S3 cache unavailable, building without it: {error.message}")
        found = False
    else:
        if not found:
            result.notes.append("no usable cache on S3 yet (cold build)")
    if found:
        result.cache_from.append({"type": "local", "src": str(imported)})
        result.notes.append(f"imported cache from s3://{settings.s3.bucket}/{settings.s3.prefix}")
    if write:
        result.export_dir = workdir / "export"
        result.cache_to = {"type": "local", "dest": str(result.export_dir), "mode": settings.mode}
    return result


def finish(
    settings: CacheSettings, cache: CacheSession, *, name: str, track: Track = silent
) -> str | None:
    """After a successful build: upload an s3-sync export. Returns a summary line."""
    if settings.backend != "s3-sync" or cache.export_dir is None or settings.s3 is None:
        return None
    from prebuild.cache.s3 import client as s3_client
    from prebuild.cache.s3 import sync

    client = s3_client.make_client(settings.s3)
    stats = sync.export_to_s3(
        cache.export_dir,
        settings.s3,
        settings.s3.name or name,
        client=client,
        parallelism=settings.s3.upload_parallelism,
        track=track,
    )
    return f"cache synced to S3: {stats.uploaded} blob(s) uploaded, {stats.skipped} already there"
