"""Turn validated config models into Settings and ImageSpecs: merge defaults, expand templates.

Separate from validation so the merge rules (dicts merge defaults-then-image, everything else
is replaced; cache keys override one by one) live in one place.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from prebuild.model import (
    DEFAULT_GRACE_SECONDS,
    CacheSettings,
    HistorySettings,
    ImageSpec,
    Origin,
    S3Settings,
    Settings,
)

if TYPE_CHECKING:  # also called with config_fast's tables, which quack like these models
    from prebuild.config.schema import CacheModel, ConfigModel, ImageModel

DEFAULT_CACHE_REF = "{registry}/{name}:buildcache"


def build_settings(config: ConfigModel, registry: str, repo_root: Path | None = None) -> Settings:
    """Project-wide settings; `registry` may come from PREBUILD_REGISTRY instead of the file."""
    gc = config.gc
    history = config.history
    path = resolve(repo_root, history.path) if history.path and repo_root else None
    return Settings(
        registry=registry,
        insecure_registries=tuple(config.insecure_registries),
        builder=config.builder,
        jobs=config.jobs,
        keep=gc.keep,
        max_age_seconds=gc.max_age,
        grace_seconds=gc.grace if gc.grace is not None else DEFAULT_GRACE_SECONDS,
        gc_after_build=gc.after_build,
        history=HistorySettings(store=history.store, path=path),
    )


def resolve(repo_root: Path, relative: str) -> Path:
    """Absolute, normalised path of a repo-relative config path (symlinks kept)."""
    return Path(os.path.normpath(repo_root / relative))


def merge_cache(project: CacheModel, image: CacheModel | None) -> CacheModel:
    """The project `[cache]` with the keys an image's `cache` sets replaced (s3 key by key too)."""
    if image is None:
        return project
    overrides = image.model_dump(exclude_unset=True, exclude={"s3"})
    s3 = project.s3
    if image.s3 is not None:  # without a project table: the image's own (same values and set)
        update = image.s3.model_dump(exclude_unset=True)
        s3 = image.s3 if project.s3 is None else project.s3.model_copy(update=update)
    return project.model_copy(update={**overrides, "s3": s3})


def expand(template: str, registry: str, name: str | None) -> str:
    """Substitute {registry} and {name}; with name None, `{name}` is kept for later."""
    text = template.replace("{registry}", registry)
    return text if name is None else text.replace("{name}", name)


def cache_settings(cache: CacheModel, registry: str, name: str | None) -> CacheSettings:
    """CacheSettings with templates expanded (registry backend gets the default ref)."""
    backend = cache.backend or "registry"
    ref = cache.ref or (DEFAULT_CACHE_REF if backend == "registry" else None)
    s3 = None
    if cache.s3 is not None and cache.s3.bucket:
        given = cache.s3.model_dump(exclude_none=True)
        for key in ("prefix", "name"):
            if key in given:
                given[key] = expand(given[key], registry, name)
        given.setdefault("name", name if name is not None else "{name}")
        s3 = S3Settings(**given)
    defaults = CacheSettings()
    return CacheSettings(
        backend=backend,
        ref=expand(ref, registry, name) if ref else None,
        mode=cache.mode or defaults.mode,
        image_manifest=_pick(cache.image_manifest, defaults.image_manifest),
        oci_mediatypes=_pick(cache.oci_mediatypes, defaults.oci_mediatypes),
        ignore_error=_pick(cache.ignore_error, defaults.ignore_error),
        extra_from=tuple(expand(ref, registry, name) for ref in cache.extra_from or ()),
        s3=s3,
    )


def expand_cache(cache: CacheSettings, registry: str, name: str) -> CacheSettings:
    """Finish `{name}` templates in a CacheSettings built without a name (source images)."""
    s3 = cache.s3
    if s3 is not None:
        s3 = dataclasses.replace(
            s3,
            prefix=expand(s3.prefix, registry, name),
            name=expand(s3.name, registry, name) if s3.name else name,
        )
    return dataclasses.replace(
        cache,
        ref=expand(cache.ref, registry, name) if cache.ref else None,
        extra_from=tuple(expand(ref, registry, name) for ref in cache.extra_from),
        s3=s3,
    )


def override_s3_endpoint(images: tuple[ImageSpec, ...], endpoint: str) -> tuple[ImageSpec, ...]:
    """Every S3 cache's `endpoint_url` replaced: one checked-in config runs against a local
    S3 on any port (tests, a second stack) as PREBUILD_REGISTRY does for the registry. It is
    part of S3Settings, so boto3 (s3-sync, gc, storage, history) and BuildKit's own
    `type=s3,endpoint_url=` both get it."""

    def moved(spec: ImageSpec) -> ImageSpec:
        s3 = spec.cache.s3
        if s3 is None:
            return spec
        cache = dataclasses.replace(spec.cache, s3=dataclasses.replace(s3, endpoint_url=endpoint))
        return dataclasses.replace(spec, cache=cache)

    return tuple(moved(spec) for spec in images)


def _pick(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def image_paths(
    config: ConfigModel, image: ImageModel | None, repo_root: Path
) -> tuple[Path, Path]:
    """(context, dockerfile) from the image's keys, else [defaults], else the repo root and
    <context>/Dockerfile."""
    defaults = config.defaults
    context_rel = (image.context if image else None) or defaults.context or "."
    context = resolve(repo_root, context_rel)
    dockerfile_rel = (image.dockerfile if image else None) or defaults.dockerfile
    dockerfile = resolve(repo_root, dockerfile_rel) if dockerfile_rel else context / "Dockerfile"
    return context, dockerfile


def defaults_spec(config: ConfigModel, repo_root: Path, registry: str) -> ImageSpec:
    """The project-wide image defaults as an ImageSpec (name ''), the starting point for sources;
    cache templates keep `{name}` until the source names its images."""
    defaults = config.defaults
    context, dockerfile = image_paths(config, None, repo_root)
    base = ImageSpec(name="", repo_root=repo_root, context=context, dockerfile=dockerfile)
    return ImageSpec(
        name="",
        repo_root=repo_root,
        context=context,
        dockerfile=dockerfile,
        build_args=dict(defaults.build_args),
        platforms=tuple(defaults.platforms) if defaults.platforms else base.platforms,
        labels=dict(defaults.labels),
        extra_inputs=tuple(defaults.inputs or ()),
        refresh_seconds=defaults.refresh,
        tags=tuple(defaults.tags) if defaults.tags is not None else base.tags,
        cache=cache_settings(config.cache, registry, None),
    )


def native_image(
    config: ConfigModel, image: ImageModel, base: ImageSpec, registry: str, origin: Origin
) -> ImageSpec:
    """One `[[image]]` table merged onto the defaults."""
    context, dockerfile = image_paths(config, image, base.repo_root)
    return ImageSpec(
        name=image.name,
        repo_root=base.repo_root,
        context=context,
        dockerfile=dockerfile,
        target=image.target,
        build_args={**base.build_args, **image.build_args},
        platforms=tuple(image.platforms) if image.platforms else base.platforms,
        labels={**base.labels, **image.labels},
        extra_inputs=tuple(image.inputs) if image.inputs is not None else base.extra_inputs,
        refresh_seconds=image.refresh if image.refresh is not None else base.refresh_seconds,
        depends_on=tuple(image.depends_on),
        tags=tuple(image.tags) if image.tags is not None else base.tags,
        cache=cache_settings(merge_cache(config.cache, image.cache), registry, image.name),
        origin=origin,
    )
