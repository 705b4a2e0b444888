"""Build what the plan says is missing, in dependency order, N at a time, and push it.

A failing image never stops independent ones; images FROM it are `blocked`. Nothing is
pushed for a failed image (BuildKit pushes only after every step succeeded). Siblings and
bases are pinned with `--build-context NAME=docker-image://REF@DIGEST`, so the image built is
exactly the one its key describes even if a base tag moves during the run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime

from prebuild import graph
from prebuild.build import revision as git
from prebuild.build import split, tidy
from prebuild.build.display import Display
from prebuild.cache import backends
from prebuild.engine import capability, races
from prebuild.engine.buildx import BuildRequest
from prebuild.errors import PrebuildError
from prebuild.model import Project
from prebuild.plan.planner import ImagePlan, Plan
from prebuild.report.results import ImageResult, Outcome

KEY_LABEL = "dev.prebuild.key"


@dataclass(frozen=True)
class BuildOptions:
    jobs: int = 1
    force: bool = False
    dry_run: bool = False
    push: bool = True
    export_cache: bool = True
    builder: str | None = None
    # the builder's platforms (buildx inspect), asked only when something needs building;
    # None: not checked (the build itself then says what it lacks)
    builder_platforms: Callable[[], Sequence[str]] | None = None
    platform: str | None = None  # split build: only this platform, pushed by digest


def needs_build(plan: ImagePlan, *, force: bool) -> bool:
    """An image without a key is never built: its tag would be empty and its moving tags would
    point at an image nobody can name."""
    if plan.key is None:
        return False
    return force or plan.status in ("missing", "stale", "unknown")


def selection(plan: Plan, names: Sequence[str], *, force: bool) -> list[str]:
    """Images to build: requested ones that need it, plus missing siblings they build FROM."""
    by_name = plan.by_name()
    requested = list(names) or list(by_name)
    chosen = {n for n in requested if needs_build(by_name[n], force=force)}
    for name in list(chosen):
        for dep in graph.closure([name], plan.dependency_map()) - {name}:
            if needs_build(by_name[dep], force=False):
                chosen.add(dep)
    return [n for n in graph.order(plan.dependency_map()) if n in chosen]


def labels_for(project: Project, plan: ImagePlan, created: str) -> dict[str, str]:
    labels = dict(plan.spec.labels)
    labels["org.opencontainers.image.created"] = created
    if revision := git.revision(project.repo_root):
        labels["org.opencontainers.image.revision"] = revision
    if source := git.source_url(project.repo_root):
        labels["org.opencontainers.image.source"] = source
    labels[KEY_LABEL] = plan.key or ""
    return labels


def request_for(
    project: Project, plan: ImagePlan, cache: backends.CacheSession, options: BuildOptions
) -> BuildRequest:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = (plan.ref or "", *(f"{plan.repository}:{t}" for t in plan.spec.tags))
    return BuildRequest(
        context=plan.spec.context,
        dockerfile=plan.spec.dockerfile,
        tags=tags,
        target=plan.spec.target,
        build_args=plan.spec.build_args,
        build_contexts=plan.pins,
        labels=labels_for(project, plan, created),
        platforms=plan.platforms,
        cache_from=tuple(cache.cache_from),
        cache_to=cache.cache_to,
        push=options.push,
        builder=options.builder,
        annotations={"org.opencontainers.image.created": created},
        # stale = same key, refresh age passed: re-run the non-hermetic steps for real
        no_cache=plan.status == "stale",
    )


def build_one(
    project: Project, plan: ImagePlan, options: BuildOptions, display: Display
) -> ImageResult:
    started = time.monotonic()
    result = ImageResult(
        name=plan.name, status="built", key=plan.key, ref=plan.ref, started_at=time.time()
    )
    display.start(plan.name, plan.ref or plan.name)
    try:
        track = display.track(plan.name)  # s3-sync transfers: a bar on a TTY, lines otherwise
        with backends.session(
            plan.spec.cache,
            registry=plan.registry,
            name=plan.name,
            write=options.export_cache,
            track=track,
        ) as cache:
            for note in cache.notes:
                display.line(plan.name, note)
            request = request_for(project, plan, cache, options)
            if options.platform:
                request = split.platform_request(request, plan, options.platform)
                result.ref = request.tags[0]  # the platform tag; `merge` writes the key tag

            def raced(name: str) -> None:
                result.reason = f"export retried: another build wrote {name} at the same moment"
                display.line(plan.name, f"{result.reason}; running again (all steps cached)")

            previous = tidy.before(project, request) if options.push else {}

            def show(text: str) -> None:
                display.line(plan.name, text)

            staged = request.push and request.cache_to is not None
            # Key tag last: with a cache to export, the first build exports it (no push), the
            # cache reaches S3 too, and only then a second, all-cached build pushes the tags,
            # the key tag after the moving ones. Stopped anywhere before, the key tag is
            # absent, so the next run builds the image again instead of trusting a half.
            first = _cache_only(request) if staged else request
            built = races.build(first, on_line=show, on_retry=raced)
            if options.export_cache and (
                synced := backends.finish(plan.spec.cache, cache, name=plan.name, track=track)
            ):
                display.line(plan.name, synced)
            if staged:  # its steps are the first build's, all cached: the log keeps those
                quiet = lambda text: None if text.startswith("#") else show(text)  # noqa: E731
                races.build(_key_tag_last(request), on_line=quiet, on_retry=raced)
                show(f"pushed {', '.join(_key_tag_last(request).tags)} (key tag last)")
        if tidied := tidy.after(project, previous):
            display.line(plan.name, tidied)
        result.cache_hits, result.cache_steps = built.progress.cached, built.progress.total
        result.pushed = list(request.tags) if options.push else []
    except PrebuildError as error:
        result.status = "failed"
        text = str(error)
        result.reason = text.splitlines()[0] + _login_hint(text, plan.registry)
        result.error_tail = text.splitlines()[-15:]
    result.seconds = round(time.monotonic() - started, 2)
    display.done(plan.name, result.status, _detail(result))
    return result


def _cache_only(request: BuildRequest) -> BuildRequest:
    """The build that only exports the cache: no tag, no push (the result stays in BuildKit)."""
    return dataclasses.replace(request, tags=(), push=False)


def _key_tag_last(request: BuildRequest) -> BuildRequest:
    """The push after the cache export: every step cached, nothing exported again, and the
    key tag (tags[0]) written after the moving tags."""
    tags = (*request.tags[1:], *request.tags[:1])
    return dataclasses.replace(request, tags=tags, cache_to=None, no_cache=False)


# What BuildKit says when the registry refused its credentials (or the lack of them) for a push.
_DENIED = ("push access denied", "insufficient_scope", "401 Unauthorized", "403 Forbidden")


def _login_hint(text: str, registry: str) -> str:
    """The refused push's way out: credentials come only from the docker config."""
    if not any(words in text for words in _DENIED):
        return ""
    host = registry.split("/", 1)[0]
    return f" (hint: `docker login {host}` with an account that may push to it)"


def _detail(result: ImageResult) -> str:
    if result.status == "built":
        cache = f"cache {result.cache_hits}/{result.cache_steps} steps"
        return f"{result.ref} ({cache}, {result.seconds:.0f}s)"
    return result.reason


def run(
    project: Project,
    plan: Plan,
    names: Sequence[str],
    options: BuildOptions,
    display: Display,
    *,
    into: dict[str, ImageResult] | None = None,
) -> list[ImageResult]:
    """Build the selection; returns one result per planned image (skipped ones included).
    `into` receives each result as it is known (an interrupted run reports those)."""
    by_name = plan.by_name()
    todo = selection(plan, names, force=options.force)
    requested = list(names) or [p.name for p in plan.images]
    results: dict[str, ImageResult] = {} if into is None else into
    for name in requested:
        if name not in todo:
            p = by_name[name]
            status: Outcome = "failed" if p.key is None else "skipped"
            reason = p.reason if p.key is None else "present in registry"
            results[name] = ImageResult(
                name=name, status=status, key=p.key, ref=p.ref, reason=reason
            )
    if options.dry_run:
        for name in todo:
            p = by_name[name]
            results[name] = ImageResult(
                name=name, status="planned", key=p.key, ref=p.ref, reason=p.status
            )
        return _ordered(results, plan)
    deps = {n: tuple(d for d in by_name[n].depends_on if d in todo) for n in todo}
    todo = _drop_unbuildable(todo, by_name, options, display, results)
    failed_keys = {n for n, r in results.items() if r.status == "failed"}
    _schedule(project, by_name, todo, deps, failed_keys, options, display, results)
    return _ordered(results, plan)


def _drop_unbuildable(todo, by_name, options: BuildOptions, display, results) -> list[str]:
    """Images needing a platform the builder lacks fail now, before any build starts (their
    dependents are then blocked like any failed image's); the rest are returned."""
    if not todo or options.builder_platforms is None:
        return todo
    try:
        available = tuple(options.builder_platforms())
    except PrebuildError as error:  # each build then says in its own words what is wrong
        display.note(f"builder platforms unknown ({error.message.splitlines()[0]}): not checked")
        return todo
    kept = []
    for name in todo:
        wanted = (options.platform,) if options.platform else by_name[name].platforms
        lacking = capability.missing(wanted, available)
        if not lacking:
            kept.append(name)
            continue
        p = by_name[name]
        reason = capability.hint(options.builder, lacking, available)
        results[name] = ImageResult(name=name, status="failed", key=p.key, ref=p.ref, reason=reason)
        display.done(name, "failed", reason)
    return kept


def _schedule(project, by_name, todo, deps, failed, options, display, results) -> None:
    pending = list(todo)
    running: dict[Future[ImageResult], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        while pending or running:
            for name in list(pending):
                blockers = [d for d in deps[name] if d in failed]
                if blockers:
                    pending.remove(name)
                    failed.add(name)
                    reason = f"blocked: {', '.join(blockers)} failed"
                    results[name] = ImageResult(
                        name=name, status="blocked", key=by_name[name].key, reason=reason
                    )
                    display.done(name, "blocked", reason)
                elif len(running) < options.jobs and all(d in results for d in deps[name]):
                    pending.remove(name)
                    running[pool.submit(build_one, project, by_name[name], options, display)] = name
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                # only this (scheduling) thread writes results: workers just return theirs
                results[name] = future.result()
                if results[name].status != "built":
                    failed.add(name)


def _ordered(results: dict[str, ImageResult], plan: Plan) -> list[ImageResult]:
    return [results[p.name] for p in plan.images if p.name in results]
