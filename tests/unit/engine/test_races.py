"""races.build: a build that lost a race for one of its names runs again; others fail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from prebuild.engine import progress, races
from prebuild.engine.buildx import BuildRequest, BuildResult
from prebuild.errors import DockerError

REF = "127.0.0.1:5000/p/base:0123abcd"
RAN = ["#5 [1/2] RUN make", "#5 0.101 compiled", "#5 DONE 1.0s"]
CACHED = ["#5 [1/2] RUN make", "#5 CACHED"]
LOST = f'ERROR: failed to solve: image "{REF}": already exists'


def _request() -> BuildRequest:
    return BuildRequest(context=Path("ctx"), dockerfile=Path("ctx/Dockerfile"), tags=(REF,))


class Engine:
    """buildx.build stand-in: fails the first `lose` attempts with `error`, then succeeds."""

    def __init__(self, lose: int, error: str = LOST) -> None:
        self.lose, self.error, self.calls = lose, error, 0

    def __call__(self, request: BuildRequest, *, on_line: Callable[[str], None]) -> BuildResult:
        self.calls += 1
        lines = RAN if self.calls == 1 else CACHED
        for line in lines:
            on_line(line)
        if self.calls <= self.lose:
            raise DockerError(f"docker buildx build failed: {self.error}\n{self.error}")
        return BuildResult(progress=progress.parse(lines), output_tail=lines)


def test_lost_race_is_retried_and_reports_the_steps_that_ran(monkeypatch) -> None:
    engine = Engine(lose=1)
    monkeypatch.setattr("prebuild.engine.buildx.build", engine)
    retried: list[str] = []
    result = races.build(
        _request(), on_line=lambda _: None, sleep=lambda _: None, on_retry=retried.append
    )
    assert engine.calls == 2 and retried == [REF]
    assert (result.progress.cached, result.progress.total) == (0, 1)  # ran, not "cached"


def test_other_failures_and_other_names_are_not_retried(monkeypatch) -> None:
    for error in ("RUN make: exit code 2", 'image "127.0.0.1:5000/p/other:x": already exists'):
        engine = Engine(lose=5, error=error)
        monkeypatch.setattr("prebuild.engine.buildx.build", engine)
        with pytest.raises(DockerError):
            races.build(_request(), on_line=lambda _: None, sleep=lambda _: None)
        assert engine.calls == 1


def test_gives_up_after_a_bounded_number_of_attempts(monkeypatch) -> None:
    engine = Engine(lose=10)
    monkeypatch.setattr("prebuild.engine.buildx.build", engine)
    with pytest.raises(DockerError, match="already exists"):
        races.build(_request(), on_line=lambda _: None, sleep=lambda _: None)
    assert engine.calls == races.ATTEMPTS


def test_docker_hub_short_names_match() -> None:
    error = DockerError('image "docker.io/library/app:latest": already exists')
    assert races.raced_name(error, ("app",)) == "docker.io/library/app:latest"


def test_a_registry_tag_being_rewritten_is_retried(monkeypatch) -> None:
    head = (
        "failed to push 127.0.0.1:5000/p/base:latest: unexpected status from HEAD request to "
        "http://127.0.0.1:5000/v2/p/base/manifests/latest: 500 Internal Server Error"
    )
    engine = Engine(lose=1, error=head)
    monkeypatch.setattr("prebuild.engine.buildx.build", engine)
    pauses: list[float] = []
    races.build(_request(), on_line=lambda _: None, sleep=pauses.append)
    assert engine.calls == 2 and pauses == [races.PAUSE]
    elsewhere = head.replace("/v2/p/base/", "/v2/q/other/")
    assert races.raced_name(DockerError(elsewhere), (REF,)) is None


def test_untagged_result_created_by_another_build_is_a_race(monkeypatch) -> None:
    """A cache-only export (no tags) names its result moby-dangling@DIGEST: same digest, same
    content, so losing its creation to a concurrent build of the same key is retried too."""
    dangling = "moby-dangling@sha256:" + "f" * 64
    engine = Engine(lose=1, error=f'ERROR: failed to solve: image "{dangling}": already exists')
    monkeypatch.setattr("prebuild.engine.buildx.build", engine)
    retried: list[str] = []
    untagged = BuildRequest(context=Path("ctx"), dockerfile=Path("ctx/Dockerfile"), tags=())
    races.build(untagged, on_line=lambda _: None, sleep=lambda _: None, on_retry=retried.append)
    assert engine.calls == 2 and retried == [dangling]
