"""Plan: every image's key, its ref, and whether the registry already has it.

Analysis (Dockerfile + inputs) needs no network; keying.py keys each image as soon as its
siblings and bases allow (an image FROM a sibling includes the sibling's key) and asks the
registry at once, on a pool, whether REGISTRY/NAME:TAG exists, while the next Dockerfiles are
read. Nothing here raises for a registry problem: the image's status becomes `unknown` with
the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from prebuild import graph
from prebuild.analysis import check
from prebuild.analysis.image import ImageAnalysis, analyse_image
from prebuild.errors import UsageError
from prebuild.model import ImageSpec, Project
from prebuild.plan import keying
from prebuild.plan.images import ImagePlan, Plan, Status, provenance_json
from prebuild.registry.client import RegistryClient

__all__ = ["ImagePlan", "Plan", "Status", "make_client", "make_plan", "provenance_json", "select"]

MAX_PARALLEL_REQUESTS = 16


def make_client(
    project: Project, *, deadline: float = 30.0, on_request=None, budget=None
) -> RegistryClient:
    """`deadline`: seconds per registry call, retries included (never past the command's
    deadline, `budget` or the current one)."""
    return RegistryClient(
        insecure=project.settings.insecure_registries,
        deadline=deadline,
        on_request=on_request,
        budget=budget,
    )


def select(project: Project, names: Sequence[str]) -> list[ImageSpec]:
    """The named images (all when none), with a did-you-mean error for unknown names."""
    if not names:
        return list(project.images)
    names = list(dict.fromkeys(names))  # `build app app` plans and reports app once
    known = {spec.name: spec for spec in project.images}
    unknown = [n for n in names if n not in known]
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], known, n=1)
        raise UsageError(
            f"no image named {unknown[0]!r} in {project.config_file}",
            hint=f"did you mean {hint[0]!r}?" if hint else f"images: {', '.join(sorted(known))}",
        )
    return [known[n] for n in names]


def make_plan(
    project: Project,
    names: Sequence[str] = (),
    *,
    offline: bool = False,
    client: RegistryClient | None = None,
    native_platform: Callable[[], str] | None = None,
    check_presence: bool = True,
    now: datetime | None = None,
) -> Plan:
    """Plan the named images (all when none) plus the siblings they build FROM."""
    all_names = {spec.name for spec in project.images}
    registry = project.settings.registry
    wanted = select(project, names)
    native = functools.cache(native_platform or (lambda: "linux/amd64"))  # asked once
    client = None if offline else (client or make_client(project))
    when = now or datetime.now(UTC)

    def platforms_of(analysis: ImageAnalysis) -> tuple[str, ...]:
        return tuple(native() if p == "linux" else p for p in analysis.spec.platforms)

    def ask(plan: ImagePlan) -> None:
        assert client is not None
        keying.check_presence(plan, client, when)

    analyses: dict[str, ImageAnalysis] = {}
    todo = [spec.name for spec in wanted]
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_REQUESTS) as pool:
        keyer = keying.Keyer(
            pool, client, platforms_of, registry=registry, offline=offline,
            ask=ask if client is not None and check_presence else None,
        )  # fmt: skip
        try:
            # analysis on this thread: parsing and selecting files is CPU under the GIL, and
            # threads made it slower (P3-scale: +0.25 s of system time for 500 images); big
            # hashes have threads of their own, and the pool answers registry questions
            while todo:
                for spec in [project.image(n) for n in dict.fromkeys(todo) if n not in analyses]:
                    analyses[spec.name] = analyse_image(spec, names=all_names, registry=registry)
                    keyer.add(analyses[spec.name])
                todo = [d for a in analyses.values() for d in a.depends_on if d not in analyses]
            edges = {
                n: check.Edges(a.spec, a.dockerfile_path, a.externals) for n, a in analyses.items()
            }
            check.raise_all(check.cycle_errors(edges))  # located at the FROM line; graph's is not
            order = graph.order({n: a.depends_on for n, a in analyses.items()})
            keyer.wait()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # a bad config asks nothing more
            raise
    plans = keyer.plans
    if offline:
        for plan in plans.values():
            plan.reason = plan.reason or "offline: registry not asked; key is provisional"
    wanted_names = [s.name for s in wanted]
    extra = [n for n in order if n not in wanted_names]  # siblings pulled in as dependencies
    ordered = [plans[n] for n in wanted_names] + [plans[n] for n in extra]
    return Plan(images=ordered)
