"""The runner hook: make NAME's exact image available locally, as fast as a plain pull.

The key is computed from the checkout exactly as `plan` does. When `REGISTRY/NAME:TAG` exists
it is pulled and tagged as the name the CI scripts expect. When it does not (a pull request
changed an input) or the registry cannot be reached in time, the fallback runs: a read-only
build from the registry cache (never `--cache-to`, never a push; siblings it builds FROM that
cannot be pulled either are built locally first), or cache arguments for the CI's own build
command. A hook never fails a job that could still build.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from prebuild import deadline as deadlines
from prebuild import graph
from prebuild.cache import backends
from prebuild.engine.buildx import BuildRequest
from prebuild.engine.local import Local
from prebuild.engine.process import EngineTimeout
from prebuild.errors import DockerError, PrebuildError, UsageError
from prebuild.model import Project
from prebuild.plan.planner import ImagePlan, Plan, make_client, make_plan

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


def cache_from_entries(plan: ImagePlan) -> list[dict[str, str]]:
    """What a read-only build may read: the image's cache (+ extras) and its moving tags."""
    entries = backends.read_entries(plan.spec.cache, registry=plan.registry, name=plan.name)
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
    timeout: float = 30.0,
    builder: str | None = None,
    platform: str | None = None,
    budget: deadlines.Deadline | None = None,
    build_timeout: float | None = None,
    engine: Local | None = None,
) -> PullResult:
    """Pull NAME's key tag, or fall back. Everything up to the fallback (planning, registry,
    `docker pull`, tag) shares `budget` (default: `timeout` seconds from now); a fallback
    build gets `build_timeout` of its own, and is not tried when the engine does not answer."""
    started = time.monotonic()
    local = engine or Local(builder=builder)
    budget = budget or deadlines.Deadline(timeout, "pull")
    with deadlines.scope(budget):
        client = make_client(project, deadline=max(1.0, timeout), budget=budget)
        plan = make_plan(project, [name], client=client, native_platform=local.native_platform)
        image = plan.by_name()[name]
        chosen = runner_platform(image, platform, local.native_platform)
        result = PullResult(name=name, local_name=local_name or name, key=image.key, ref=image.ref)
        entries = cache_from_entries(image)
        # a podman job's own build line cannot take BuildKit cache arguments
        usable = cache_args(entries) if local.reads_buildkit_cache else []
        result.cache_args = [f"--platform={chosen}", *usable]
        if image.status in ("present", "stale") and image.ref:
            try:
                if not local.has(image.ref, image.digest, platform=chosen):  # a warm runner
                    local.pull(image.ref, platform=chosen)
                local.tag(image.ref, result.local_name)
                result.outcome = "pulled"
            except DockerError as error:
                result.reason = f"pull failed: {cause(error)}"
        else:
            result.reason = image.reason or image.status
    if result.outcome != "pulled":
        if fallback == "build" and not _engine_answers(local, budget):
            result.outcome = "failed"
            result.reason += "; no fallback build: the engine does not answer"
        else:
            with deadlines.scope(deadlines.Deadline(build_timeout, "fallback build")):
                _fallback(plan, image, result, fallback, entries, local, chosen)
    result.seconds = round(time.monotonic() - started, 2)
    return result


def runner_platform(image: ImagePlan, asked: str | None, native: Callable[[], str]) -> str:
    """The one platform a runner pulls: the asked one, else the image's only platform (an
    arm64-only image runs emulated on amd64 runners), else the runner's native one."""
    chosen = asked or (image.platforms[0] if len(image.platforms) == 1 else native())
    if chosen not in image.platforms:
        raise UsageError(
            f"image {image.name!r} is built for {', '.join(image.platforms)}, not {chosen}",
            hint="pass one of them with --platform",
        )
    return chosen


PING_GRACE = 1.0  # seconds the engine gets to answer once the pull budget is spent


def _engine_answers(local: Local, budget: deadlines.Deadline) -> bool:
    """A fallback build on an engine that never answers would hang until its own deadline."""
    try:
        return local.ping(max(budget.remaining(), PING_GRACE))
    except EngineTimeout:
        return False


def _fallback(
    plan: Plan,
    image: ImagePlan,
    result: PullResult,
    fallback: Fallback,
    entries,
    local: Local,
    platform: str,
) -> None:
    if fallback == "fail":
        result.outcome = "failed"
        return
    if fallback == "cache-args":
        result.outcome = "cache-args"
        return
    notes, step = [result.reason], "fallback build"
    try:
        for sibling in missing_siblings(plan, image.name):
            step = f"sibling {sibling.name}"
            entries_of = cache_from_entries(sibling)
            hits = _build_local(sibling, sibling.ref or "", entries_of, local, platform)
            notes.append(f"built {step} locally ({hits})")
        step = "fallback build"
        hits = _build_local(image, result.local_name, entries, local, platform)
    except PrebuildError as error:
        result.outcome = "failed"
        result.reason = "; ".join([*notes, f"{step} failed: {_why(error)}"]).lstrip("; ")
        return
    result.outcome = "built"
    result.reason = "; ".join([*notes, f"built from the Dockerfile ({hits})"]).lstrip("; ")


def missing_siblings(plan: Plan, name: str) -> list[ImagePlan]:
    """Siblings `name` builds FROM (transitively), dependencies first, that the runner cannot
    pull: their key tag is absent (a pull request changed `base` too) or the registry is down.
    The fallback build is pinned to `REGISTRY/base:KEY`, so without them it cannot start."""
    deps = plan.dependency_map()
    needed = graph.closure([name], deps) - {name}
    by_name = plan.by_name()
    return [
        by_name[n]
        for n in graph.order(deps)
        if n in needed and by_name[n].ref and by_name[n].status not in ("present", "stale")
    ]


def _build_local(image: ImagePlan, tag: str, entries, local: Local, platform: str) -> str:
    """Build read-only into the local engine as `tag`; returns the cache hits as text.

    A sibling is tagged with its own key ref, which is exactly what its dependents' pins
    (`--build-context base=docker-image://REGISTRY/base:KEY`) name: the docker driver resolves
    them from the local image store. Nothing is pushed, so the registry never has that tag.
    """
    request = BuildRequest(
        context=image.spec.context,
        dockerfile=image.spec.dockerfile,
        tags=(tag,),
        target=image.spec.target,
        build_args=image.spec.build_args,
        build_contexts=image.pins,
        labels=image.spec.labels,
        platforms=(platform,),  # --load takes one platform: the runner's
        cache_from=tuple(entries),
        cache_to=None,  # read-only: a runner never writes cache
        push=False,
        load=True,
        builder=local.builder,
    )
    with backends.session(
        image.spec.cache, registry=image.registry, name=image.name, write=False
    ) as cache:
        if image.spec.cache.backend == "s3-sync":
            request = _with_cache(request, cache.cache_from)
        return local.build(request, on_line=_log)


def _why(error: PrebuildError) -> str:
    """One line saying what failed. A build that fails before any step (a base that cannot be
    resolved) starts with just `docker buildx build failed (exit 1)`; buildx's own
    `ERROR: failed to solve: ...` line further down says why."""
    lines = error.message.splitlines()
    solve = [x.strip() for x in lines if x.strip().startswith("ERROR: failed to solve")]
    return f"{lines[0]}: {solve[-1]}" if solve and ": " not in lines[0] else lines[0]


def cause(error: PrebuildError, *, lines: int = 4, chars: int = 600) -> str:
    """What failed and why, on one line: the first line (`docker pull REF failed (exit 1):`)
    plus the last few non-empty lines of the command's output (the daemon's `Error response`),
    bounded so a chatty failure cannot flood a report."""
    first, *rest = error.message.splitlines() or [""]
    detail = [line.strip() for line in rest if line.strip()][-lines:]
    text = " ".join([first.strip(), " | ".join(detail)]).strip()
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _log(line: str) -> None:
    """The fallback build's progress goes to stderr: it is the slow path of a runner's job, so
    its log must show which steps ran and which the cache saved, while stdout stays reserved
    for the `--format` output a hook evals or parses."""
    print(line, file=sys.stderr, flush=True)


def _with_cache(request: BuildRequest, extra: list[dict[str, str]]) -> BuildRequest:
    from dataclasses import replace

    return replace(request, cache_from=tuple(extra) + request.cache_from)
