"""pull_one against the fake registry with the engine recorded: what a runner's job gets.

The docker calls (pull, tag, build) are replaced by recorders, the registry is the in-process
fake: each test asserts what the hook asked the engine to do and what it reports to the CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from prebuild.engine.buildx import BuildRequest
from prebuild.errors import DockerError, UsageError
from prebuild.model import Project
from prebuild.pull.hook import PullResult, cache_args, pull_one
from tests.unit.build.test_scheduler import Recorder
from tests.unit.plan.test_planner import UNREACHABLE, planned, publish, write_repo


@dataclass
class Engine:
    """Stands in for the docker CLI calls of the hook: pulls and tags in order; `pull_fails`
    makes `docker pull` fail like a registry that vanished between HEAD and pull."""

    builds: Recorder
    calls: list[tuple[str, ...]] = field(default_factory=list)
    pull_fails: bool = False
    answers: bool = True  # does the engine answer its ping before a fallback build?

    def pull(self, ref: str, *, quiet: bool = False, platform: str | None = None) -> None:
        self.calls.append(("pull", ref, platform or ""))
        if self.pull_fails:
            raise DockerError(f"docker pull {ref} failed (exit 1)\nmanifest unknown")

    def tag(self, source: str, target: str) -> None:
        self.calls.append(("tag", source, target))

    def ping(self, timeout: float) -> bool:
        return self.answers

    @property
    def requests(self) -> list[BuildRequest]:
        return self.builds.requests


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    recorded = Engine(Recorder())
    monkeypatch.setattr("prebuild.engine.buildx.pull", recorded.pull)
    monkeypatch.setattr("prebuild.engine.buildx.tag", recorded.tag)
    monkeypatch.setattr("prebuild.engine.buildx.ping", recorded.ping)
    monkeypatch.setattr("prebuild.engine.buildx.build", recorded.builds)
    monkeypatch.setattr("prebuild.engine.platforms.native", lambda builder=None: "linux/amd64")
    return recorded


def keyed(project: Project, *published: str, fake=None) -> dict[str, str]:
    """REGISTRY/ci/NAME:KEY of every image; the named ones are pushed to the fake first."""
    plan, _ = planned(project)
    if published:
        publish(fake, plan, *published)
    return {p.name: p.ref or "" for p in plan.images}


def test_present_image_is_pulled_and_tagged_nothing_built(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    refs = keyed(project, "base", fake=fake)
    result = pull_one(project, "base", local_name="ci-base", timeout=5)
    assert (result.outcome, result.reason) == ("pulled", "")
    assert result.ref == refs["base"] and result.key and refs["base"].endswith(result.key[:24])
    pull = ("pull", refs["base"], "linux/amd64")  # the image's only platform
    assert engine.calls == [pull, ("tag", refs["base"], "ci-base")]
    assert engine.requests == []
    # the cache args a CI's own build would need are there even on the fast path
    assert result.cache_args == [
        "--platform=linux/amd64",
        f"--cache-from=type=registry,ref={fake.host}/ci/base:buildcache",
        f"--cache-from=type=registry,ref={fake.host}/ci/base:latest",
    ]


def test_local_name_defaults_to_the_image_name(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    refs = keyed(project, "other", fake=fake)
    result = pull_one(project, "other")
    assert result.local_name == "other"
    assert engine.calls[-1] == ("tag", refs["other"], "other")


def test_missing_image_builds_read_only_from_the_cache(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    refs = keyed(project)
    result = pull_one(project, "base", local_name="ci-base", timeout=5)
    assert result.outcome == "built"
    tag = refs["base"].rsplit(":", 1)[1]
    assert result.reason == f"{tag} not in registry; built from the Dockerfile (cache 1/2 steps)"
    assert engine.calls == []  # nothing to pull
    (request,) = engine.requests
    assert request.tags == ("ci-base",)
    assert (request.push, request.load, request.cache_to) == (False, True, None)
    assert request.platforms == ("linux/amd64",)
    assert request.build_args == {"VARIANT": "release"}
    assert [e["ref"] for e in request.cache_from] == [
        f"{fake.host}/ci/base:buildcache",
        f"{fake.host}/ci/base:latest",
    ]


def test_fallback_cache_args_builds_nothing(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    result = pull_one(project, "base", fallback="cache-args", timeout=5)
    assert result.outcome == "cache-args"
    assert result.reason.endswith("not in registry")
    assert result.cache_args == ["--platform=linux/amd64"] + cache_args(
        [
            {"type": "registry", "ref": f"{fake.host}/ci/base:buildcache"},
            {"type": "registry", "ref": f"{fake.host}/ci/base:latest"},
        ]
    )
    assert engine.calls == [] and engine.requests == []


def test_fallback_fail_reports_failed(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    result = pull_one(project, "base", fallback="fail", timeout=5)
    assert (result.outcome, engine.requests) == ("failed", [])
    assert result.reason.endswith("not in registry")


def test_failed_pull_falls_back_to_a_build(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    refs = keyed(project, "base", fake=fake)
    engine.pull_fails = True
    result = pull_one(project, "base", local_name="ci-base", timeout=5)
    assert result.outcome == "built"
    # why the pull failed (the daemon's words), then what the fallback did
    assert result.reason.startswith(f"pull failed: docker pull {refs['base']} failed (exit 1)")
    assert "manifest unknown" in result.reason
    assert result.reason.endswith("; built from the Dockerfile (cache 1/2 steps)")
    assert engine.calls == [("pull", refs["base"], "linux/amd64")]  # failed: never tagged
    assert [r.tags for r in engine.requests] == [("ci-base",)]


def test_missing_sibling_is_built_first_under_its_key_ref(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    refs = keyed(project)
    result = pull_one(project, "app", local_name="ci-app", timeout=5)
    assert result.outcome == "built"
    # base first, tagged with exactly the ref app's pinned build context names
    assert [r.tags for r in engine.requests] == [(refs["base"],), ("ci-app",)]
    app = engine.requests[1]
    assert app.build_contexts == {"base": f"docker-image://{refs['base']}"}
    assert "built sibling base locally (cache 1/2 steps)" in result.reason
    assert result.reason.endswith("built from the Dockerfile (cache 1/2 steps)")


def test_present_sibling_is_not_rebuilt(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    keyed(project, "base", fake=fake)
    result = pull_one(project, "app", timeout=5)
    assert result.outcome == "built"
    assert [r.tags for r in engine.requests] == [("app",)]


def test_sibling_failure_fails_with_the_step_named(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    engine.builds.fail.add("base")
    result = pull_one(project, "app", timeout=5)
    assert result.outcome == "failed"
    assert "sibling base failed: docker buildx build failed: base broke" in result.reason
    assert [r.tags[0].rsplit(":", 1)[0] for r in engine.requests] == [f"{fake.host}/ci/base"]


def test_failed_build_names_buildkits_solve_error(fake, busybox, engine, tmp_path, monkeypatch):
    project = write_repo(tmp_path, fake.host)

    def fails(request: BuildRequest, *, on_line=None):
        raise DockerError(
            "docker buildx build failed (exit 1)\n#3 resolving\n"
            "ERROR: failed to solve: base: not found"
        )

    monkeypatch.setattr("prebuild.engine.buildx.build", fails)
    result = pull_one(project, "other", timeout=5)
    assert result.outcome == "failed"
    assert result.reason.endswith(
        "fallback build failed: docker buildx build failed (exit 1): "
        "ERROR: failed to solve: base: not found"
    )


def test_unreachable_registry_falls_back_within_the_timeout(busybox, engine, tmp_path):
    project = write_repo(tmp_path, UNREACHABLE)
    result = pull_one(project, "other", timeout=1)
    assert result.outcome == "built"
    assert engine.calls == []
    assert result.seconds < 10  # bounded by --timeout (generous: a loaded machine)


def test_fallback_build_progress_goes_to_stderr(fake, busybox, engine, tmp_path, capsys):
    project = write_repo(tmp_path, fake.host)
    pull_one(project, "base", timeout=5)
    out, err = capsys.readouterr()
    assert out == ""  # stdout is the --format output's
    assert "#5 CACHED" in err


def test_result_as_json_has_every_field() -> None:
    result = PullResult(name="a", local_name="b", key="k", ref="r", outcome="pulled")
    assert result.as_json() == {
        "name": "a",
        "key": "k",
        "ref": "r",
        "local_name": "b",
        "outcome": "pulled",
        "seconds": 0.0,
        "reason": "",
        "cache_args": [],
    }


def test_missing_siblings_in_dependency_order(fake, busybox, engine, tmp_path: Path):
    from prebuild.pull.hook import missing_siblings

    extra = {"deep": "FROM app\nRUN true\n"}
    project = write_repo(tmp_path, fake.host, extra_images=extra)
    plan, _ = planned(project)
    assert [p.name for p in missing_siblings(plan, "deep")] == ["base", "app"]
    assert missing_siblings(plan, "other") == []


def test_s3_sync_fallback_reads_the_downloaded_cache_and_never_writes(
    fake, busybox, engine, tmp_path, monkeypatch
):
    from prebuild.cache import backends

    opened: list[tuple[str, bool]] = []

    def sync_session(settings, *, name, write, workdir, **_):
        opened.append((name, write))
        return backends.CacheSession(cache_from=[{"type": "local", "src": str(workdir)}])

    monkeypatch.setattr(backends, "_s3_sync_session", sync_session)
    settings = '[cache]\nbackend = "s3-sync"\n[cache.s3]\nbucket = "ci-cache"\n'
    project = write_repo(tmp_path, fake.host, settings=settings)
    result = pull_one(project, "other", fallback="build", timeout=5)
    assert result.outcome == "built"
    assert opened == [("other", False)]
    (request,) = engine.requests
    assert request.cache_to is None
    assert request.cache_from[0]["type"] == "local"  # the download, ahead of the moving tags
    assert [e.get("ref") for e in request.cache_from[1:]] == [f"{fake.host}/ci/other:latest"]


def test_a_chatty_pull_failure_is_one_bounded_line(fake, busybox, engine, tmp_path, monkeypatch):
    project = write_repo(tmp_path, fake.host)
    refs = keyed(project, "other", fake=fake)

    def chatty(ref: str, *, quiet: bool = False, platform: str | None = None) -> None:
        noise = "\n".join(f"layer {i}: retrying" for i in range(500))
        raise DockerError(f"docker pull {ref} failed (exit 1)\n{noise}\nError response: denied")

    monkeypatch.setattr("prebuild.engine.buildx.pull", chatty)
    result = pull_one(project, "other", fallback="fail", timeout=5)
    assert result.outcome == "failed" and "\n" not in result.reason
    assert result.reason.startswith(f"pull failed: docker pull {refs['other']} failed (exit 1)")
    assert "Error response: denied" in result.reason and len(result.reason) < 700


def test_multi_platform_image_pulls_the_runners_platform(fake, busybox, engine, tmp_path):
    both = 'platforms = ["linux/amd64", "linux/arm64"]\n'
    project = write_repo(tmp_path, fake.host, image_extra={"other": both})
    refs = keyed(project, "other", fake=fake)
    result = pull_one(project, "other", timeout=5)
    assert engine.calls[0] == ("pull", refs["other"], "linux/amd64")  # native (recorded)
    assert result.cache_args[0] == "--platform=linux/amd64"
    pull_one(project, "other", platform="linux/arm64", timeout=5)
    assert engine.calls[2] == ("pull", refs["other"], "linux/arm64")


def test_a_platform_the_image_is_not_built_for_is_a_usage_error(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    with pytest.raises(UsageError, match="built for linux/amd64, not linux/s390x"):
        pull_one(project, "base", platform="linux/s390x", timeout=5)
    assert engine.calls == [] and engine.requests == []


def test_no_fallback_build_when_the_engine_does_not_answer(fake, busybox, engine, tmp_path):
    project = write_repo(tmp_path, fake.host)
    engine.answers = False
    result = pull_one(project, "base", timeout=5)
    assert result.outcome == "failed"
    assert result.reason.endswith("not in registry; no fallback build: the engine does not answer")
    assert engine.requests == []
    # cache args need no engine: a CI's own build line can still use them
    assert pull_one(project, "base", fallback="cache-args", timeout=5).outcome == "cache-args"


def test_a_ping_that_times_out_means_no_fallback_build(
    fake, busybox, engine, tmp_path, monkeypatch
):
    from prebuild.engine.process import EngineTimeout

    def hangs(timeout: float) -> bool:
        raise EngineTimeout("docker version timed out")

    monkeypatch.setattr("prebuild.engine.buildx.ping", hangs)
    project = write_repo(tmp_path, fake.host)
    result = pull_one(project, "base", timeout=5)
    assert result.outcome == "failed" and result.reason.endswith("the engine does not answer")
    assert engine.requests == []
