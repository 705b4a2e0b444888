"""Plain data shared by every stage of the pipeline (config -> sources -> keys -> plan -> build).

Kept free of behaviour so each stage can be tested with hand-made values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CacheBackendName = Literal["registry", "none", "s3", "s3-sync"]
DEFAULT_GRACE_SECONDS = 48 * 3600  # Settings.grace_seconds default; named so gc can show it


@dataclass(frozen=True)
class Origin:
    """Where a setting was defined, for located error messages."""

    file: str
    line: int | None = None
    key: str | None = None


@dataclass(frozen=True)
class S3Settings:
    """S3 cache location (backends `s3` and `s3-sync`). Credentials never live here."""

    bucket: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    use_path_style: bool = False
    prefix: str = ""
    name: str | None = None  # cache manifest name; default: the image name
    touch_refresh: str | None = None  # e.g. "24h"
    upload_parallelism: int = 4


@dataclass(frozen=True)
class CacheSettings:
    """How an image's BuildKit cache is stored and found."""

    backend: CacheBackendName = "registry"
    ref: str | None = None  # registry backend: default REGISTRY/NAME:buildcache
    mode: Literal["min", "max"] = "max"
    image_manifest: bool = True
    oci_mediatypes: bool = True
    ignore_error: bool = True
    extra_from: tuple[str, ...] = ()  # more registry cache refs to read (another branch's)
    s3: S3Settings | None = None


@dataclass(frozen=True)
class ImageSpec:
    """One CI image as the user declared it (native table or an importer such as env files).

    Paths are absolute; `repo_root` is what reports and keys make paths relative to.
    """

    name: str
    repo_root: Path
    context: Path
    dockerfile: Path
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ("linux",)  # "linux" = builder's native architecture
    labels: dict[str, str] = field(default_factory=dict)
    extra_inputs: tuple[str, ...] = ()  # repo-relative paths/globs hashed into the key
    refresh_seconds: int | None = None  # rebuild when the key tag is older than this
    depends_on: tuple[str, ...] = ()  # declared sibling dependencies (FROM lines add more)
    tags: tuple[str, ...] = ("latest",)  # moving tags pushed by trusted builds
    cache: CacheSettings = field(default_factory=CacheSettings)
    origin: Origin | None = None
    # Where imported values came from, e.g. ("build-arg FILE_ENV", "ci/env.sh:3"), ("platform",
    # "ci/env.sh:5"): shown by `explain` and `plan --json`; not part of the key.
    provenance: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HistorySettings:
    """Where nightly reports are kept (`[history]`): the registry unless configured."""

    store: Literal["registry", "s3", "dir", "none"] = "registry"
    path: Path | None = None  # store = "dir"; default <repo>/.prebuild/history


@dataclass(frozen=True)
class Settings:
    """Project-wide settings (the `[prebuild]` part of the config, minus images)."""

    registry: str  # e.g. "ghcr.io/org/ci" or "127.0.0.1:5000/ci"
    insecure_registries: tuple[str, ...] = ()  # host[:port] reachable over plain HTTP
    builder: str | None = None  # buildx builder name; None = the engine's own
    jobs: int = 1
    keep: int = 5  # gc: newest key tags kept per image
    max_age_seconds: int | None = None  # gc: tags younger than this are kept
    # gc: unreferenced S3 blobs younger than this are kept. Longer than s3-sync's touch_refresh
    # (24h) plus the longest build, so a blob an in-flight export reuses is never collected.
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    gc_after_build: bool = False
    history: HistorySettings = field(default_factory=HistorySettings)


@dataclass(frozen=True)
class Project:
    """A loaded, validated configuration: everything downstream needs, nothing raw."""

    config_file: Path
    repo_root: Path
    settings: Settings
    images: tuple[ImageSpec, ...]
    import_errors: tuple[str, ...] = ()  # images a source could not import (partial loads)

    def image(self, name: str) -> ImageSpec:
        for spec in self.images:
            if spec.name == name:
                return spec
        raise KeyError(name)
