"""scheduler.run with buildx.build replaced by a recorder: exact requests, order, failures."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from prebuild import progress as progress_module
from prebuild.build import scheduler
from prebuild.build.scheduler import BuildOptions, run
from prebuild.cache.backends import check_builder
from prebuild.engine import progress
from prebuild.engine.buildx import BuildRequest, BuildResult
from prebuild.errors import DockerError, PrebuildError
from prebuild.model import Project
from prebuild.plan.planner import Plan
from prebuild.report import results as report
from prebuild.report.results import ImageResult
from tests.unit.plan.test_planner import FakeRegistry, planned, publish, write_repo

CREATED = "2025-06-01T12:00:00Z"
REVISION = "0123456789abcdef0123456789abcdef01234567"
SOURCE = "https://example.com/acme/ci.git"
PLAIN = ["#5 [2/2] COPY hello.txt /hello.txt", "#5 CACHED", "#6 [3/3] RUN true", "#6 DONE 0.1s"]


class FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None) -> datetime:  # type: ignore[override]
        return datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Recorder:
    """Stands in for prebuild.engine.buildx.build: records requests; images in `fail` raise."""

    fail: set[str] = field(default_factory=set)
    together: list[set[str]] = field(default_factory=list)  # these must run at the same time
    requests: list[BuildRequest] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    barriers: dict[str, threading.Barrier] = field(default_factory=dict)
    calls: list[BuildRequest] = field(default_factory=list)  # every buildx call, as made
    staged: dict[str, BuildRequest] = field(default_factory=dict)  # cache-only phase by image

    def __post_init__(self) -> None:
        for group in self.together:
            barrier = threading.Barrier(len(group), timeout=5)
            self.barriers.update(dict.fromkeys(group, barrier))

    def __call__(
        self, request: BuildRequest, *, on_line: Callable[[str], None] | None = None
    ) -> BuildResult:
        name = request.context.name  # ci/NAME in these repos
        with self.lock:
            self.calls.append(request)
            if not request.push and not request.tags and request.cache_to:
                self.staged[name] = request  # the cache-only phase: the push completes it
            else:
                first = self.staged.pop(name, None)
                if first is not None:  # the image's one logical build, as both phases say
                    result = BuildResult(progress=progress.parse(PLAIN), output_tail=PLAIN)
                    tags = (request.tags[-1], *request.tags[:-1])  # key tag pushed last
                    self.requests.append(
                        dataclasses.replace(request, tags=tags, cache_to=first.cache_to,
                                            no_cache=first.no_cache)
                    )  # fmt: skip
                    return result
                self.requests.append(request)
            self.events.append(f"start {name}")
        if name in self.barriers:
            self.barriers[name].wait()  # raises BrokenBarrierError unless run concurrently
        for line in PLAIN:
            if on_line:
                on_line(line)
        with self.lock:
            self.events.append(f"end {name}")
        if name in self.fail:
            raise DockerError(f"docker buildx build failed: {name} broke\n#6 ERROR: exit 1")
        return BuildResult(progress=progress.parse(PLAIN), output_tail=PLAIN)

    @property
    def built(self) -> list[str]:
        return [e.split()[1] for e in self.events if e.startswith("start")]


class Display:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def start(self, name: str, ref: str) -> None:
        self.events.append(("start", name))

    def line(self, name: str, text: str) -> None:
        pass

    def done(self, name: str, status: str, detail: str) -> None:
        self.events.append(("done", name, status, detail))

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def track(self, name: str) -> progress_module.Track:
        return progress_module.silent


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    monkeypatch.setattr("prebuild.engine.buildx.build", found)
    monkeypatch.setattr("prebuild.build.revision.revision", lambda repo: REVISION)
    monkeypatch.setattr("prebuild.build.revision.source_url", lambda repo: SOURCE)
    monkeypatch.setattr(scheduler, "datetime", FrozenDatetime)
    return found


def planned_repo(tmp_path: Path, fake: FakeRegistry, settings: str = "") -> tuple[Project, Plan]:
    project = write_repo(tmp_path, fake.host, settings=settings)
    plan, _ = planned(project)
    return project, plan


def outcome(results: list[ImageResult]) -> list[tuple[str, str, str]]:
    return [(r.name, r.status, r.reason) for r in results]


def test_key_tag_is_pushed_last_after_the_cache(fake, busybox, recorder, tmp_path):
    """Two buildx calls: the first only exports the cache (no tag, no push), the second pushes
    with every step cached, the key tag after `latest`: stopped in between, no key tag exists."""
    project, plan = planned_repo(tmp_path, fake)
    base = plan.by_name()["base"]
    run(project, plan, ["base"], BuildOptions(), Display())
    repo = f"{fake.host}/ci/base"
    first, second = recorder.calls
    assert (first.tags, first.push, first.cache_to is not None) == ((), False, True)
    assert (second.tags, second.push, second.cache_to) == (
        (f"{repo}:latest", f"{repo}:{base.tag}"),
        True,
        None,
    )


def test_exact_request_and_argv_for_one_image(fake, busybox, recorder, tmp_path):
    index, _ = busybox
    project, plan = planned_repo(tmp_path, fake)
    base = plan.by_name()["base"]
    results = run(project, plan, ["base"], BuildOptions(), Display())
    repo = f"{fake.host}/ci/base"
    busybox_ref = f"{fake.host}/seed/busybox:stable"
    pin = f"docker-image://{fake.host}/seed/busybox@{index}"
    labels = {
        "org.example.team": "ci",
        "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.revision": REVISION,
        "org.opencontainers.image.source": SOURCE,
        "dev.prebuild.key": base.key,
    }
    cache_to = {
        "type": "registry",
        "ref": f"{repo}:buildcache",
        "mode": "max",
        "image-manifest": "true",
        "oci-mediatypes": "true",
        "ignore-error": "true",
    }
    expected = BuildRequest(
        context=tmp_path / "ci" / "base",
        dockerfile=tmp_path / "ci" / "base" / "Dockerfile",
        tags=(f"{repo}:{base.tag}", f"{repo}:latest"),
        target=None,
        build_args={"VARIANT": "release"},
        build_contexts={busybox_ref: pin},
        labels=labels,
        platforms=("linux/amd64",),
        cache_from=({"type": "registry", "ref": f"{repo}:buildcache"},),
        cache_to=cache_to,
        push=True,
        annotations={"org.opencontainers.image.created": CREATED},
    )
    assert recorder.requests == [expected]
    assert recorder.requests[0].argv() == [
        "docker", "buildx", "build", "--progress=plain", "--provenance=false",
        "--file", str(tmp_path / "ci" / "base" / "Dockerfile"),
        "--build-arg", "VARIANT=release",
        "--build-context", f"{busybox_ref}={pin}",
        "--label", f"dev.prebuild.key={base.key}",
        "--label", "org.example.team=ci",
        "--label", f"org.opencontainers.image.created={CREATED}",
        "--label", f"org.opencontainers.image.revision={REVISION}",
        "--label", f"org.opencontainers.image.source={SOURCE}",
        "--platform", "linux/amd64",
        "--cache-from", f"type=registry,ref={repo}:buildcache",
        "--cache-to", f"type=registry,ref={repo}:buildcache,mode=max,image-manifest=true,"
        "oci-mediatypes=true,ignore-error=true",
        "--output", "type=image,push=true,oci-mediatypes=true,"
        f"annotation.org.opencontainers.image.created={CREATED}",
        "--tag", f"{repo}:{base.tag}",
        "--tag", f"{repo}:latest",
        str(tmp_path / "ci" / "base"),
    ]  # fmt: skip
    (result,) = results
    assert (result.name, result.status, result.key, result.ref) == (
        "base",
        "built",
        base.key,
        base.ref,
    )
    assert (result.cache_hits, result.cache_steps) == (1, 2)
    assert result.pushed == list(expected.tags)


def test_siblings_are_built_from_their_key_tag(fake, busybox, recorder, tmp_path):
    project, plan = planned_repo(tmp_path, fake)
    run(project, plan, ["app", "tool"], BuildOptions(), Display())
    by_repo = {r.context.name: r for r in recorder.requests}
    sibling = f"docker-image://{fake.host}/ci/base:{plan.by_name()['base'].tag}"
    assert by_repo["app"].build_contexts == {"base": sibling}
    assert by_repo["tool"].build_contexts == {f"{fake.host}/ci/base": sibling}
    assert recorder.built[0] == "base"  # the missing sibling is built first


def test_jobs_1_builds_in_dependency_order(fake, busybox, recorder, tmp_path):
    project, plan = planned_repo(tmp_path, fake)
    results = run(project, plan, [], BuildOptions(jobs=1), Display())
    assert recorder.events == [
        f"{e} {n}" for n in ("base", "other", "app", "tool") for e in ("start", "end")
    ]
    assert [r.name for r in results] == ["base", "app", "tool", "other"]  # plan order
    assert {r.status for r in results} == {"built"}
    assert report.exit_code(results) == 0


def test_jobs_2_runs_each_wave_together_after_its_bases(fake, busybox, tmp_path, monkeypatch):
    found = Recorder(together=[{"base", "other"}, {"app", "tool"}])
    monkeypatch.setattr("prebuild.engine.buildx.build", found)
    project, plan = planned_repo(tmp_path, fake)
    results = run(project, plan, [], BuildOptions(jobs=2), Display())
    assert {r.status for r in results} == {"built"}
    events = found.events
    for dependent in ("app", "tool"):
        assert events.index("end base") < events.index(f"start {dependent}")
    assert set(events[:2]) == {"start base", "start other"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_failure_blocks_dependents_not_independents(fake, busybox, recorder, tmp_path, jobs):
    recorder.fail.add("base")
    project, plan = planned_repo(tmp_path, fake)
    display = Display()
    results = run(project, plan, [], BuildOptions(jobs=jobs), display)
    assert outcome(results) == [
        ("base", "failed", "docker buildx build failed: base broke"),
        ("app", "blocked", "blocked: base failed"),
        ("tool", "blocked", "blocked: base failed"),
        ("other", "built", ""),
    ]
    assert sorted(recorder.built) == ["base", "other"]
    assert results[0].error_tail == ["docker buildx build failed: base broke", "#6 ERROR: exit 1"]
    assert results[0].pushed == []
    assert ("done", "app", "blocked", "blocked: base failed") in display.events
    assert report.exit_code(results) == 1


def test_present_images_are_skipped_unless_forced(fake, busybox, recorder, tmp_path):
    project, first = planned_repo(tmp_path, fake)
    publish(fake, first, "base", "app", "tool", "other")
    plan, _ = planned(project)
    results = run(project, plan, [], BuildOptions(), Display())
    assert outcome(results) == [
        (n, "skipped", "present in registry") for n in ("base", "app", "tool", "other")
    ]
    assert recorder.requests == [] and report.exit_code(results) == 0
    forced = run(project, plan, ["app"], BuildOptions(force=True), Display())
    assert outcome(forced) == [("app", "built", "")]  # base is present: not rebuilt
    forced = run(project, plan, [], BuildOptions(force=True, jobs=1), Display())
    assert recorder.built == ["app", "base", "other", "app", "tool"]
    assert {r.status for r in forced} == {"built"}


def test_dry_run_builds_nothing(fake, busybox, recorder, tmp_path):
    project, first = planned_repo(tmp_path, fake)
    publish(fake, first, "other")
    plan, _ = planned(project)
    results = run(project, plan, [], BuildOptions(dry_run=True), Display())
    assert outcome(results) == [
        ("base", "planned", "missing"),
        ("app", "planned", "missing"),
        ("tool", "planned", "missing"),
        ("other", "skipped", "present in registry"),
    ]
    assert [r.ref for r in results] == [p.ref for p in plan.images]
    assert recorder.requests == []


def test_presence_unknown_but_keyed_is_built(fake, busybox, recorder, tmp_path):
    fake.fail("/v2/ci/other/manifests/", 403)  # the HEAD is refused: status unknown
    project, plan = planned_repo(tmp_path, fake)
    other = plan.by_name()["other"]
    assert other.status == "unknown" and other.key is not None
    assert other.reason.startswith(f"registry: {fake.host}: access denied anonymously")
    results = run(project, plan, ["other"], BuildOptions(), Display())
    assert outcome(results) == [("other", "built", "")]
    assert recorder.built == ["other"]


def test_unkeyed_images_fail_without_building(fake, recorder, tmp_path):
    project, plan = planned_repo(tmp_path, fake)  # no busybox in the registry: nothing has a key
    results = run(project, plan, [], BuildOptions(), Display())
    assert [(r.name, r.status) for r in results] == [
        (n, "failed") for n in ("base", "app", "tool", "other")
    ]
    assert [r.reason for r in results] == [p.reason for p in plan.images]
    assert recorder.requests == [] and report.exit_code(results) == 1


def test_cache_backend_none_passes_no_cache_args(fake, busybox, recorder, tmp_path):
    project, plan = planned_repo(tmp_path, fake, settings='[cache]\nbackend = "none"\n')
    run(project, plan, ["other"], BuildOptions(), Display())
    (request,) = recorder.requests
    assert (request.cache_from, request.cache_to) == ((), None)
    assert not {"--cache-from", "--cache-to"} & set(request.argv())


def test_s3_backend_needs_a_builder_that_exports_s3(fake, tmp_path):
    s3 = '[cache]\nbackend = "s3"\n[cache.s3]\nbucket = "acme-ci-cache"\n'
    project = write_repo(tmp_path, fake.host, settings=s3)
    cache = project.image("base").cache
    with pytest.raises(PrebuildError) as info:
        check_builder(cache, "docker")
    assert info.value.exit_code == 2
    text = str(info.value)
    assert "the builder's driver is 'docker'" in text
    assert "docker buildx create --driver docker-container" in text  # way out 1
    assert 'backend = "s3-sync"' in text  # way out 2
    for driver in ("docker-container", "remote", "kubernetes"):
        check_builder(cache, driver)
    sync = write_repo(tmp_path, fake.host, settings=s3.replace('"s3"', '"s3-sync"'))
    check_builder(sync.image("base").cache, "docker")


def test_force_never_builds_an_unkeyed_image(fake, recorder, tmp_path):
    project, plan = planned_repo(tmp_path, fake)  # no busybox in the registry: nothing has a key
    results = run(project, plan, [], BuildOptions(force=True, jobs=1), Display())
    assert [r.tags for r in recorder.requests] == []
    assert [(r.name, r.status) for r in results] == [
        (n, "failed") for n in ("base", "app", "tool", "other")
    ]


def test_stale_rebuild_does_not_reuse_the_cache(fake, busybox, recorder, tmp_path):
    refresh = {"other": 'refresh = "7d"\n'}
    project = write_repo(tmp_path, fake.host, image_extra=refresh)
    first, _ = planned(project)
    publish(fake, first, "other", created="2000-01-02T00:00:00Z")
    plan, _ = planned(project)
    assert plan.by_name()["other"].status == "stale"
    run(project, plan, ["other"], BuildOptions(), Display())
    (request,) = recorder.requests
    assert "--no-cache" in request.argv()


# -- builder capability --------------------------------------------------------------------


def test_an_image_the_builder_cannot_build_fails_before_any_build(
    fake, busybox, recorder, tmp_path
):
    project = write_repo(
        tmp_path, fake.host, image_extra={"other": 'platforms = ["linux/arm64", "linux/amd64"]'}
    )
    plan, _ = planned(project)
    asked: list[str] = []

    def platforms() -> tuple[str, ...]:
        asked.append("inspect")
        return ("linux/amd64", "linux/amd64/v2")

    display = Display()
    results = run(project, plan, [], BuildOptions(builder_platforms=platforms), display)
    by_name = {r.name: r for r in results}
    assert by_name["other"].status == "failed"
    assert by_name["other"].reason.startswith(
        "builder 'default' cannot build linux/arm64 (it builds linux/amd64, linux/amd64/v2): "
    )
    assert "docker buildx create --append" in by_name["other"].reason
    assert sorted(recorder.built) == ["app", "base", "tool"]  # the others still build
    assert asked == ["inspect"]  # once per run, not per image
    assert ("start", "other") not in display.events
    assert report.exit_code(results) == 1


def test_dependents_of_an_unbuildable_image_are_blocked(fake, busybox, recorder, tmp_path):
    project = write_repo(tmp_path, fake.host, image_extra={"base": 'platforms = ["linux/arm64"]'})
    plan, _ = planned(project)
    options = BuildOptions(builder_platforms=lambda: ("linux/amd64",))
    results = {r.name: r for r in run(project, plan, [], options, Display())}
    assert results["base"].status == "failed"
    assert results["app"].status == "blocked"
    assert "base" not in recorder.built and "app" not in recorder.built


def test_nothing_to_build_asks_the_builder_nothing(fake, busybox, recorder, tmp_path):
    project, plan = planned_repo(tmp_path, fake)
    publish(fake, plan, "base", "app", "tool", "other")
    plan, _ = planned(project)

    def platforms() -> tuple[str, ...]:
        raise AssertionError("buildx inspect without anything to build")

    results = run(project, plan, [], BuildOptions(builder_platforms=platforms), Display())
    assert {r.status for r in results} == {"skipped"}


def test_a_builder_that_cannot_be_inspected_leaves_the_builds_to_say_why(
    fake, busybox, recorder, tmp_path
):
    project, plan = planned_repo(tmp_path, fake)

    def platforms() -> tuple[str, ...]:
        raise DockerError("docker buildx inspect failed (exit 1):\nno builder")

    results = run(project, plan, ["base"], BuildOptions(builder_platforms=platforms), Display())
    assert [r.status for r in results] == ["built"]
