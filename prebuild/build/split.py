"""Per-platform fan-out: build one platform of an image on a native runner, merge them later.

`build NAME --platform P` builds only P and pushes it under a platform tag `KEYTAG-os-arch`
(the engine's own `docker` builder cannot push by digest alone, and a tag is also how a
later job on another runner finds it). `merge NAME` writes the key tag (and the moving tags)
as one index of those manifests, by digest. Same key, same tag, same kind of index as a
one-machine multi-platform build: the key never depended on who built it. Retention treats
platform tags as part of their key tag (kept and deleted with it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prebuild.engine import imagetools
from prebuild.engine.buildx import BuildRequest
from prebuild.errors import RegistryError, UsageError
from prebuild.model import Project
from prebuild.plan.planner import ImagePlan, Plan, make_client, make_plan
from prebuild.registry.refs import ImageRef

CREATED = "org.opencontainers.image.created"


def slug(platform: str) -> str:
    """linux/arm/v7 -> linux-arm-v7: a platform as a tag suffix."""
    return platform.replace("/", "-")


def staging_ref(plan: ImagePlan, platform: str) -> str:
    return f"{plan.repository}:{plan.tag}-{slug(platform)}"


def check_platform(plan: Plan, names: Sequence[str], platform: str) -> None:
    """`--platform P` must be one of every named image's platforms (exit 2 otherwise)."""
    by_name = plan.by_name()
    for name in names or list(by_name):
        image = by_name[name]
        if platform not in image.platforms:
            raise UsageError(
                f"image {name!r} is built for {', '.join(image.platforms)}, not {platform}",
                hint="--platform takes one of the image's configured platforms",
            )


def _per_platform(entry: dict[str, str] | None, platform: str) -> dict[str, str] | None:
    """A registry cache ref of its own per platform: runners of different platforms export
    at the same time, and one shared ref would keep only the last one's cache."""
    if entry is None or entry.get("type") != "registry" or "ref" not in entry:
        return entry
    return {**entry, "ref": f"{entry['ref']}-{slug(platform)}"}


def platform_request(request: BuildRequest, plan: ImagePlan, platform: str) -> BuildRequest:
    """The same build for one platform under its platform tag: no key tag, no moving tags."""
    own = [e for e in (_per_platform(dict(x), platform) for x in request.cache_from) if e]
    return dataclasses.replace(
        request,
        tags=(staging_ref(plan, platform),),
        platforms=(platform,),
        cache_from=(*own, *request.cache_from),
        cache_to=_per_platform(dict(request.cache_to), platform) if request.cache_to else None,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class MergeResult:
    name: str
    status: str  # merged | present | failed
    ref: str | None
    reason: str = ""
    sources: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "failed" else 0


def merge(project: Project, name: str, *, native_platform=None) -> MergeResult:
    """Write NAME's key tag (+ moving tags) as the index of its per-platform pushes."""
    client = make_client(project)
    plan = make_plan(project, [name], client=client, native_platform=native_platform)
    image = plan.by_name()[name]
    result = MergeResult(name=name, status="failed", ref=image.ref)
    if image.key is None or image.ref is None:
        result.reason = image.reason or "no key"
        return result
    if image.status in ("present", "stale"):
        result.status, result.reason = "present", "key tag already in registry"
        return result
    staged: dict[str, str] = {}  # platform tag -> the manifest it points at
    missing = []
    for platform in image.platforms:
        ref = staging_ref(image, platform)
        try:
            head = client.head_manifest(ImageRef.parse(ref))
        except RegistryError as error:
            result.reason = f"registry: {error.message}"
            return result
        if head is None:
            missing.append(platform)
        else:
            staged[ref] = head.digest
    if missing:
        result.reason = (
            f"not built yet for {', '.join(missing)}: run `prebuild build {name} --platform P` "
            "for each first"
        )
        return result
    repo = image.repository
    sources = [f"{repo}@{digest}" for digest in staged.values()]
    tags = [image.ref, *(f"{repo}:{t}" for t in image.spec.tags)]
    imagetools.create(tags, sources, {CREATED: _now()})
    result.status, result.sources = "merged", sources
    return result
