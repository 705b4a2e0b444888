"""Split builds: one platform per runner under its platform tag, then one index by merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from prebuild.build import split
from prebuild.cli.plan import matrix_for
from prebuild.engine.buildx import BuildRequest
from prebuild.errors import UsageError
from tests.unit.plan.test_planner import planned, write_repo
from tests.unit.registry.test_client import OCI_INDEX, image

TWO = 'platforms = ["linux/amd64", "linux/arm64"]'


def repo(tmp_path: Path, fake):
    project = write_repo(tmp_path, fake.host, image_extra={"other": TWO})
    plan, _ = planned(project)
    return project, plan


def test_the_matrix_has_one_entry_per_image_and_platform(fake, busybox, tmp_path) -> None:
    _, plan = repo(tmp_path, fake)
    include = matrix_for(plan, ("other", "base"), split=True)["include"]
    assert include == [
        {"image": "base", "wave": 0, "platform": "linux/amd64"},
        {"image": "other", "wave": 0, "platform": "linux/amd64"},
        {"image": "other", "wave": 0, "platform": "linux/arm64"},
    ]


def test_a_platform_build_pushes_its_platform_tag_and_cache_only(fake, busybox, tmp_path):
    _, plan = repo(tmp_path, fake)
    other = plan.by_name()["other"]
    cache = {"type": "registry", "ref": f"{other.repository}:buildcache", "mode": "max"}
    request = BuildRequest(
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
        tags=(other.ref or "", f"{other.repository}:latest"),
        platforms=other.platforms,
        cache_from=({"type": "registry", "ref": f"{other.repository}:buildcache"},),
        cache_to=cache,
        push=True,
    )
    one = split.platform_request(request, other, "linux/arm64")
    assert one.tags == (f"{other.ref}-linux-arm64",)
    assert one.platforms == ("linux/arm64",)
    assert one.cache_to == {**cache, "ref": f"{other.repository}:buildcache-linux-arm64"}
    assert [e["ref"] for e in one.cache_from] == [
        f"{other.repository}:buildcache-linux-arm64",
        f"{other.repository}:buildcache",  # a one-machine build's cache still helps
    ]
    assert "--platform" in one.argv() and one.push


def test_a_platform_the_image_does_not_have_is_bad_input(fake, busybox, tmp_path) -> None:
    _, plan = repo(tmp_path, fake)
    with pytest.raises(UsageError) as caught:
        split.check_platform(plan, ["other"], "linux/s390x")
    assert str(caught.value).startswith(
        "image 'other' is built for linux/amd64, linux/arm64, not linux/s390x"
    )
    assert caught.value.exit_code == 2


def test_merge_writes_the_index_of_every_platform_tag(fake, busybox, tmp_path, monkeypatch):
    project, plan = repo(tmp_path, fake)
    other = plan.by_name()["other"]
    created: list[tuple[list[str], list[str]]] = []
    monkeypatch.setattr(
        "prebuild.engine.imagetools.create",
        lambda tags, sources, annotations: created.append((list(tags), list(sources))),
    )
    amd = image(fake, "ci/other", f"{other.tag}-linux-amd64")
    half = split.merge(project, "other")
    assert (half.status, created) == ("failed", [])  # nothing written with a platform missing
    assert half.reason.startswith("not built yet for linux/arm64: run `prebuild build other")
    arm = image(fake, "ci/other", f"{other.tag}-linux-arm64")
    done = split.merge(project, "other")
    assert done.status == "merged" and done.exit_code == 0
    repository = f"{fake.host}/ci/other"
    assert created == [
        ([other.ref, f"{repository}:latest"], [f"{repository}@{amd}", f"{repository}@{arm}"])
    ]
    fake.put_manifest("ci/other", other.tag, {"schemaVersion": 2, "manifests": []}, OCI_INDEX)
    assert split.merge(project, "other").status == "present"
