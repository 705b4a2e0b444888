"""Plan: every image's key, its ref, and whether the registry already has it.

Analysis (Dockerfile + inputs) needs no network. Then, in parallel: base images are resolved
to digests (once per distinct base and platform), keys computed in dependency order (an image
FROM a sibling includes the sibling's key), and one HEAD per image asks if REGISTRY/NAME:TAG
exists. Nothing here raises for a registry problem: the image's status becomes `unknown`
with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from prebuild import graph
from prebuild.analysis import check
from prebuild.analysis.image import ExternalImage, ImageAnalysis, analyse_image
from prebuild.errors import RegistryError, UsageError
from prebuild.key import material as keys
from prebuild.key.material import BaseInput, KeyMaterial
from prebuild.model import ImageSpec, Project
from prebuild.registry.client import RegistryClient
from prebuild.registry.manifests import Resolved
from prebuild.registry.refs import ImageRef

Status = Literal["present", "missing", "stale", "unknown"]
MAX_PARALLEL_REQUESTS = 16


@dataclass
class ImagePlan:
    spec: ImageSpec
    analysis: ImageAnalysis
    platforms: tuple[str, ...]
    material: KeyMaterial | None = None
    key: str | None = None
    status: Status = "unknown"
    reason: str = ""
    digest: str | None = None  # the key tag's manifest digest, when its HEAD answered one
    # FROM/COPY --from name -> pinned image, for `--build-context NAME=docker-image://...`
    pins: dict[str, str] = field(default_factory=dict)
    registry: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tag(self) -> str | None:
        return keys.tag_for(self.key) if self.key else None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.spec.name}"

    @property
    def ref(self) -> str | None:
        return f"{self.repository}:{self.tag}" if self.tag else None

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self.analysis.depends_on

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key": self.key,
            "ref": self.ref,
            "platforms": list(self.platforms),
            "status": self.status,
            "reason": self.reason,
            "inputs": [f.path for f in self.analysis.inputs + self.analysis.extra_inputs],
            "bases": [e.written for e in self.analysis.externals],
            "depends_on": list(self.depends_on),
            "provisional": bool(self.material and self.material.provisional),
            **provenance_json(self.spec),
        }


def provenance_json(spec: ImageSpec) -> dict[str, object]:
    """Each build arg's value and where it came from (imported images), and the platform's."""
    origins = dict(spec.provenance)
    if not origins:
        return {}
    build_args = {
        name: {"value": value, "from": origins.get(f"build-arg {name}")}
        for name, value in spec.build_args.items()
    }
    return {"build_args": build_args, "platform_from": origins.get("platform")}


@dataclass
class Plan:
    images: list[ImagePlan]

    def by_name(self) -> dict[str, ImagePlan]:
        return {p.name: p for p in self.images}

    def dependency_map(self) -> dict[str, tuple[str, ...]]:
        return {p.name: p.depends_on for p in self.images}

    def as_json(self) -> dict[str, object]:
        return {"images": [p.as_json() for p in self.images]}


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
    analyses: dict[str, ImageAnalysis] = {}
    todo = [spec.name for spec in wanted]
    with ThreadPoolExecutor(max_workers=4) as pool:
        while todo:
            batch = [project.image(n) for n in dict.fromkeys(todo) if n not in analyses]
            results = pool.map(
                lambda s: analyse_image(s, names=all_names, registry=registry), batch
            )
            todo = []
            for result in results:
                analyses[result.spec.name] = result
                todo.extend(d for d in result.depends_on if d not in analyses)
    edges = {n: check.Edges(a.spec, a.dockerfile_path, a.externals) for n, a in analyses.items()}
    check.raise_all(check.cycle_errors(edges))  # located at the FROM line; graph's is not
    order = graph.order({n: a.depends_on for n, a in analyses.items()})
    native = functools.cache(native_platform or (lambda: "linux/amd64"))  # asked once
    plans = {
        n: ImagePlan(
            spec=analyses[n].spec,
            analysis=analyses[n],
            platforms=tuple(native() if p == "linux" else p for p in analyses[n].spec.platforms),
            registry=registry,
        )
        for n in order
    }
    client = None if offline else (client or make_client(project))
    resolved = _resolve_bases(plans.values(), client)
    for name in order:
        _key(plans[name], plans, resolved, offline=offline)
    if client is not None and check_presence:
        _check_presence([plans[n] for n in order], client, now or datetime.now(UTC))
    elif offline:
        for plan in plans.values():
            plan.reason = plan.reason or "offline: registry not asked; key is provisional"
    wanted_names = [s.name for s in wanted]
    extra = [n for n in order if n not in wanted_names]  # siblings pulled in as dependencies
    ordered = [plans[n] for n in wanted_names] + [plans[n] for n in extra]
    return Plan(images=ordered)


BaseResult = Resolved | RegistryError | None


def _resolve_bases(plans, client: RegistryClient | None) -> dict[tuple[str, str], BaseResult]:
    """Each distinct (base, platform) resolved once, in parallel; errors kept, not raised."""
    wanted: set[tuple[str, str]] = set()
    for plan in plans:
        for ext in plan.analysis.externals:
            if ext.sibling is None and ext.ref is not None and not ext.ref.digest:
                wanted.update((str(ext.ref), p) for p in plan.platforms)
    if client is None or not wanted:
        return {}

    def resolve(item: tuple[str, str]) -> BaseResult:
        try:
            return client.resolve(ImageRef.parse(item[0]), item[1])
        except RegistryError as error:
            return error

    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_REQUESTS) as pool:
        items = sorted(wanted)
        return dict(zip(items, pool.map(resolve, items), strict=True))


def _base_input(
    plan: ImagePlan, ext: ExternalImage, plans: dict[str, ImagePlan], resolved, *, offline: bool
) -> tuple[BaseInput, str | None]:
    """The key input for one external image, and why it is unknown (None if fine)."""
    if ext.sibling:
        sibling = plans[ext.sibling]
        if sibling.key is None:
            return BaseInput(
                ref=ext.written, sibling=ext.sibling
            ), f"sibling {ext.sibling}: {sibling.reason}"
        plan.pins[ext.context_name] = f"docker-image://{sibling.ref}"
        return BaseInput(ref=ext.written, sibling=ext.sibling, sibling_key=sibling.key), None
    if ext.ref is None:
        return BaseInput(
            ref=ext.written
        ), f"line {ext.line}: cannot parse image reference {ext.written!r}"
    if ext.ref.digest:
        return BaseInput(ref=ext.written, digest=ext.ref.digest), None
    if offline:
        return BaseInput(ref=ext.written), None
    digests, pin = [], None
    for platform in plan.platforms:
        result = resolved.get((str(ext.ref), platform))
        if not isinstance(result, Resolved):
            why = str(result) if result is not None else "not resolved"
            return BaseInput(ref=ext.written), f"base {ext.written} ({platform}): {why}"
        digests.append(f"{platform}={result.platform_digest}")
        pin = result.digest
    plan.pins[ext.context_name] = f"docker-image://{ext.ref.repository_ref}@{pin}"
    # sorted: the order platforms are listed in shapes nothing, so it must not shape the key
    return BaseInput(ref=ext.written, digest=",".join(sorted(digests))), None


def _key(plan: ImagePlan, plans, resolved, *, offline: bool) -> None:
    bases, problems = [], []
    for ext in plan.analysis.externals:
        base, problem = _base_input(plan, ext, plans, resolved, offline=offline)
        bases.append(base)
        if problem:
            problems.append(problem)
    for declared in plan.spec.depends_on:
        if declared not in {e.sibling for e in plan.analysis.externals} and declared in plans:
            sibling = plans[declared]
            if sibling.key is None:
                problems.append(f"sibling {declared}: {sibling.reason}")
            bases.append(BaseInput(ref=declared, sibling=declared, sibling_key=sibling.key))
    analysis = plan.analysis
    plan.material = KeyMaterial(
        dockerfile=analysis.dockerfile_path,
        dockerfile_digest=analysis.dockerfile_digest,
        target=plan.spec.target,
        platforms=plan.platforms,
        build_args=dict(plan.spec.build_args),
        labels=dict(plan.spec.labels),
        context_mode=analysis.context_mode,
        inputs=analysis.inputs,
        bases=tuple(bases),
        extra_inputs=analysis.extra_inputs,
        provisional=offline,  # offline: every base is keyed by its reference string
        notes=analysis.notes,
    )
    if problems:
        plan.status, plan.reason = "unknown", "; ".join(problems)
        return
    plan.key = keys.compute(plan.material)


def _check_presence(plans: list[ImagePlan], client: RegistryClient, now: datetime) -> None:
    """One request per image: HEAD the key tag (GET + created time only for refresh images)."""

    def check(plan: ImagePlan) -> None:
        if plan.key is None:
            return
        ref = ImageRef.parse(plan.ref or "")
        try:
            if plan.spec.refresh_seconds is None:
                head = client.head_manifest(ref)
                plan.status = "present" if head else "missing"
                plan.digest = head.digest if head else None
                plan.reason = "" if head else f"{plan.tag} not in registry"
                return
            created = client.image_created(ref)
        except RegistryError as error:
            hint = f" (hint: {error.hint})" if error.hint else ""  # e.g. `docker login HOST`
            plan.status, plan.reason = "unknown", f"registry: {error.message}{hint}"
            return
        if created is None:
            plan.status, plan.reason = "missing", f"{plan.tag} not in registry"
        elif (now - created).total_seconds() > plan.spec.refresh_seconds:
            age = int((now - created).total_seconds() // 3600)
            plan.status, plan.reason = (
                "stale",
                f"built {age}h ago, refresh is {plan.spec.refresh_seconds // 3600}h",
            )
        else:
            plan.status, plan.reason = "present", ""

    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_REQUESTS) as pool:
        list(pool.map(check, plans))
