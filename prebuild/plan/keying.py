"""Keys in dependency order, each image's presence asked as soon as its key is known.

Keying streams behind analysis: an image is keyed once its siblings are (their keys are part
of its own) and its bases are resolved (each distinct base and platform once, on the pool,
from the moment the first image naming it is analysed), and its HEAD goes out at once. So the
registry answers while later Dockerfiles are still being read, instead of after all of them
(bench P3-scale, the no-op nightly of 500 images). Registry problems never raise: they become
an `unknown` status with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from prebuild.analysis.image import ExternalImage, ImageAnalysis
from prebuild.errors import RegistryError
from prebuild.key import material as keys
from prebuild.key.material import BaseInput, KeyMaterial
from prebuild.plan.images import ImagePlan
from prebuild.registry.client import RegistryClient
from prebuild.registry.manifests import Resolved
from prebuild.registry.refs import ImageRef

BaseResult = Resolved | RegistryError | None


class Bases:
    """Base lookups started once per (reference, platform); `get` waits for the answer."""

    def __init__(self, pool: ThreadPoolExecutor, client: RegistryClient | None) -> None:
        self._pool, self._client = pool, client
        self._lookups: dict[tuple[str, str], Future[BaseResult]] = {}

    def start(self, plan: ImagePlan) -> None:
        if self._client is None:
            return
        for ext in plan.analysis.externals:
            if ext.sibling is None and ext.ref is not None and not ext.ref.digest:
                for platform in plan.platforms:
                    item = (str(ext.ref), platform)
                    if item not in self._lookups:
                        self._lookups[item] = self._pool.submit(self._resolve, item)

    def _resolve(self, item: tuple[str, str]) -> BaseResult:
        assert self._client is not None
        try:
            return self._client.resolve(ImageRef.parse(item[0]), item[1])
        except RegistryError as error:
            return error

    def get(self, item: tuple[str, str]) -> BaseResult:
        lookup = self._lookups.get(item)
        return None if lookup is None else lookup.result()


class Keyer:
    """Takes analysed images in any order; keys each when it can, then asks the registry."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        client: RegistryClient | None,
        platforms_of: Callable[[ImageAnalysis], tuple[str, ...]],
        *,
        registry: str,
        offline: bool,
        ask: Callable[[ImagePlan], None] | None,
    ) -> None:
        self.plans: dict[str, ImagePlan] = {}
        self._pool, self._platforms_of, self._registry = pool, platforms_of, registry
        self._offline, self._ask = offline, ask
        self._bases = Bases(pool, client)
        self._keyed: set[str] = set()
        self._waiting: dict[str, set[str]] = {}  # image -> siblings not keyed yet
        self._dependents: defaultdict[str, list[str]] = defaultdict(list)
        self._asked: list[Future[None]] = []

    def add(self, analysis: ImageAnalysis) -> None:
        name = analysis.spec.name
        plan = ImagePlan(
            spec=analysis.spec,
            analysis=analysis,
            platforms=self._platforms_of(analysis),
            registry=self._registry,
        )
        self.plans[name] = plan
        self._bases.start(plan)
        missing = {d for d in analysis.depends_on if d not in self._keyed}
        if missing:
            self._waiting[name] = missing
            for dep in missing:
                self._dependents[dep].append(name)
            return
        ready = [name]
        while ready:  # a loop, not recursion: chains can be deep
            current = ready.pop()
            key_image(self.plans[current], self.plans, self._bases, offline=self._offline)
            self._keyed.add(current)
            if self._ask is not None:
                self._asked.append(self._pool.submit(self._ask, self.plans[current]))
            for dependent in self._dependents.pop(current, []):
                waiting = self._waiting[dependent]
                waiting.discard(current)
                if not waiting:
                    del self._waiting[dependent]
                    ready.append(dependent)

    def wait(self) -> None:
        """Every registry question answered (each sets its plan's status)."""
        for asked in self._asked:
            asked.result()


def _base_input(
    plan: ImagePlan,
    ext: ExternalImage,
    plans: dict[str, ImagePlan],
    resolved: Bases,
    *,
    offline: bool,
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


def key_image(
    plan: ImagePlan, plans: dict[str, ImagePlan], resolved: Bases, *, offline: bool
) -> None:
    """The plan's key material and key, or status unknown with every reason it has none."""
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


def check_presence(plan: ImagePlan, client: RegistryClient, now: datetime) -> None:
    """One request: HEAD the key tag (GET + created time only for refresh images)."""
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
