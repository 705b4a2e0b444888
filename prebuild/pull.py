"""The runner hook: make NAME's exact image available locally, as fast as a plain pull.

The key is computed from the checkout exactly as `plan` does. When `REGISTRY/NAME:TAG` exists
it is pulled and tagged as the name the CI scripts expect. When it does not (a pull request
changed an input) or the registry cannot be reached in time, the fallback runs: a read-only
build from the registry cache (never `--cache-to`, never a push), or cache arguments for the
CI's own build command. A hook never fails a job that could still build.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from prebuild import docker, platforms
from prebuild.cache import backends
from prebuild.docker import BuildRequest
from prebuild.errors import DockerError, PrebuildError
from prebuild.model import Project
from prebuild.plan import ImagePlan, make_client, make_plan

Fallback = Literal["build", "cache-args", "fail"]
Outcome = Literal["pulled", "built", "cache-args", "failed"]


@dataclass
class PullResult:
    name: str
    local_name: str
    key: str | None
    ref: str | None
    outcome: Outcome = "failed"
    seconds: float = 0.0
    reason: str = ""
    cache_args: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key": self.key,
            "ref": self.ref,
            "local_name": self.local_name,
            "outcome": self.outcome,
            "seconds": self.seconds,
            "reason": self.reason,
            "cache_args": self.cache_args,
        }


def cache_from_entries(
    plan: ImagePlan, cache_dir_for_sync: Callable[[], str] | None = None
) -> list[dict[str, str]]:
    """What a read-only build may read: the image's cache (+ extras) and its moving tags."""
    settings = plan.spec.cache
    if settings.backend == "registry":
        entries, _ = backends.registry_entries(
            settings, registry=plan.registry, name=plan.name, write=False
        )
    elif settings.backend == "s3":
        entries, _ = backends.s3_entries(settings, name=plan.name, write=False)
    else:
        entries = []
    entries += [{"type": "registry", "ref": f"{plan.repository}:{tag}"} for tag in plan.spec.tags]
    return entries


def cache_args(entries: list[dict[str, str]]) -> list[str]:
    return ["--cache-from=" + ",".join(f"{k}={v}" for k, v in entry.items()) for entry in entries]


def pull_one(
    project: Project,
    name: str,
    *,
    local_name: str | None = None,
    fallback: Fallback = "build",
    timeout: float = 120.0,
    builder: str | None = None,
) -> PullResult:
    started = time.monotonic()
    client = make_client(project, deadline=max(1.0, timeout))
    plan = make_plan(
        project, [name], client=client, native_platform=lambda: platforms.native(builder)
    )
    image = plan.by_name()[name]
    result = PullResult(name=name, local_name=local_name or name, key=image.key, ref=image.ref)
    entries = cache_from_entries(image)
    result.cache_args = cache_args(entries)
    if image.status in ("present", "stale") and image.ref:
        try:
            docker.pull(image.ref)
            docker.tag(image.ref, result.local_name)
            result.outcome = "pulled"
        except DockerError as error:
            result.reason = f"pull failed: {error.message.splitlines()[0]}"
    else:
        result.reason = image.reason or image.status
    if result.outcome != "pulled":
        _fallback(image, result, fallback, entries, builder)
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _fallback(image: ImagePlan, result: PullResult, fallback: Fallback, entries, builder) -> None:
    if fallback == "fail":
        result.outcome = "failed"
        return
    if fallback == "cache-args":
        result.outcome = "cache-args"
        return
    request = BuildRequest(
        context=image.spec.context,
        dockerfile=image.spec.dockerfile,
        tags=(result.local_name,),
        target=image.spec.target,
        build_args=image.spec.build_args,
        build_contexts=image.pins,
        labels=image.spec.labels,
        platforms=image.platforms[:1],  # --load takes one platform: the runner's
        cache_from=tuple(entries),
        cache_to=None,  # read-only: a runner never writes cache
        push=False,
        load=True,
        builder=builder,
    )
    try:
        with backends.session(
            image.spec.cache, registry=image.registry, name=image.name, write=False
        ) as cache:
            if image.spec.cache.backend == "s3-sync":
                request = _with_cache(request, cache.cache_from)
            docker.build(request)
        result.outcome = "built"
        result.reason = (
            f"{result.reason}; built from the Dockerfile with the registry cache".lstrip("; ")
        )
    except PrebuildError as error:
        result.outcome = "failed"
        result.reason = (
            f"{result.reason}; fallback build failed: {error.message.splitlines()[0]}".lstrip("; ")
        )


def _with_cache(request: BuildRequest, extra: list[dict[str, str]]) -> BuildRequest:
    from dataclasses import replace

    return replace(request, cache_from=tuple(extra) + request.cache_from)


def shell_quote(value: str) -> str:
    return shlex.quote(value)
