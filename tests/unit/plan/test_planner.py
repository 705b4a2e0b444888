"""make_plan against the in-process fake registry: statuses, siblings, pins, request counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from prebuild.config.load import load_project
from prebuild.errors import UsageError
from prebuild.key.material import BaseInput
from prebuild.model import Project
from prebuild.plan.planner import Plan, make_client, make_plan, select
from tests.unit.registry.test_client import FakeRegistry, image

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
UNREACHABLE = "127.0.0.1:9"

# name -> Dockerfile ({host}: the registry host); config order is base, app, tool, other
DOCKERFILES = {
    "base": "FROM {host}/seed/busybox:stable\nARG VARIANT\nCOPY hello.txt /hello.txt\n",
    "app": "FROM base\nCOPY app.sh /usr/local/bin/app.sh\n",
    "tool": "FROM {host}/ci/base:latest\nRUN true\n",
    "other": "FROM {host}/seed/busybox:stable\nRUN true\n",
}
BASE_EXTRA = 'build_args = { VARIANT = "release" }\nlabels = { "org.example.team" = "ci" }\n'


def write_repo(
    root: Path,
    host: str,
    *,
    settings: str = "",
    image_extra: Mapping[str, str] | None = None,
    extra_images: Mapping[str, str] | None = None,
) -> Project:
    """A repo with images base, app (FROM base), tool (FROM REGISTRY/base:latest) and other,
    all for linux/amd64, registry HOST/ci; returns the loaded project."""
    image_extra = {"base": BASE_EXTRA, **(image_extra or {})}
    dockerfiles = {**DOCKERFILES, **(extra_images or {})}
    config = [f'registry = "{host}/ci"', settings, '[defaults]\nplatforms = ["linux/amd64"]']
    for name, text in dockerfiles.items():
        (root / "ci" / name).mkdir(parents=True, exist_ok=True)
        (root / "ci" / name / "Dockerfile").write_text(text.format(host=host))
        table = f'[[image]]\nname = "{name}"\ncontext = "ci/{name}"\n'
        config.append(table + image_extra.get(name, ""))
    (root / "ci" / "base" / "hello.txt").write_text("hello\n")
    (root / "ci" / "app" / "app.sh").write_text("#!/bin/sh\necho app\n")
    (root / "ci" / "app" / "app.sh").chmod(0o755)
    (root / "prebuild.toml").write_text("\n".join(config))
    return load_project(root / "prebuild.toml")


def planned(project: Project, **kwargs: object) -> tuple[Plan, list[str]]:
    """The plan and the requests it sent, as sorted "METHOD /path" lines."""
    sent: list[str] = []
    client = make_client(
        project, deadline=5.0, on_request=lambda m, u: sent.append(f"{m} {urlsplit(u).path}")
    )
    return make_plan(project, client=client, **kwargs), sorted(sent)  # type: ignore[arg-type]


def publish(fake: FakeRegistry, plan: Plan, *names: str, created: str | None = None) -> None:
    """Push a manifest under each named image's key tag."""
    by_name = plan.by_name()
    for name in names:
        image(fake, f"ci/{name}", by_name[name].tag or "", created=created)


def statuses(plan: Plan) -> dict[str, tuple[str, str]]:
    return {p.name: (p.status, p.reason) for p in plan.images}


def test_present_and_missing_with_one_request_per_base_and_image(fake, busybox, tmp_path):
    project = write_repo(tmp_path, fake.host)
    first, _ = planned(project)
    publish(fake, first, "base", "other")
    plan, sent = planned(project, now=NOW)
    tags = {p.name: p.tag for p in plan.images}
    assert statuses(plan) == {
        "base": ("present", ""),
        "app": ("missing", f"{tags['app']} not in registry"),
        "tool": ("missing", f"{tags['tool']} not in registry"),
        "other": ("present", ""),
    }
    assert [p.key for p in plan.images] == [p.key for p in first.images]
    assert sent == sorted(
        ["GET /v2/seed/busybox/manifests/stable"]
        + [f"HEAD /v2/ci/{name}/manifests/{tag}" for name, tag in tags.items()]
    )


def test_one_resolve_per_distinct_base_and_platform(fake, busybox, tmp_path):
    index, digests = busybox
    platforms = 'platforms = ["linux/amd64", "linux/arm64"]\n'
    project = write_repo(tmp_path, fake.host, image_extra={"base": BASE_EXTRA + platforms})
    plan, sent = planned(project)
    resolves = [s for s in sent if s.startswith("GET")]
    assert resolves == ["GET /v2/seed/busybox/manifests/stable"] * 2  # amd64 + arm64, shared
    assert len([s for s in sent if s.startswith("HEAD")]) == 4
    base, other = plan.by_name()["base"], plan.by_name()["other"]
    assert base.platforms == ("linux/amd64", "linux/arm64")
    written = f"{fake.host}/seed/busybox:stable"
    both = f"linux/amd64={digests['linux/amd64']},linux/arm64={digests['linux/arm64']}"
    assert base.material is not None and other.material is not None
    assert base.material.bases == (BaseInput(ref=written, digest=both),)
    amd64 = f"linux/amd64={digests['linux/amd64']}"
    assert other.material.bases == (BaseInput(ref=written, digest=amd64),)
    pin = f"docker-image://{fake.host}/seed/busybox@{index}"
    assert base.pins == other.pins == {written: pin}


def test_missing_base_makes_its_images_unknown_without_raising(fake, tmp_path):
    project = write_repo(tmp_path, fake.host)
    plan, sent = planned(project)
    written = f"{fake.host}/seed/busybox:stable"
    base_reason = f"base {written} (linux/amd64): {written}: not found in the registry"
    assert statuses(plan) == {
        "base": ("unknown", base_reason),
        "app": ("unknown", f"sibling base: {base_reason}"),
        "tool": ("unknown", f"sibling base: {base_reason}"),
        "other": ("unknown", base_reason),
    }
    assert [p.key for p in plan.images] == [None] * 4
    assert sent == ["GET /v2/seed/busybox/manifests/stable"]  # nothing to HEAD without a key


def test_missing_platform_in_the_base_index_is_unknown(fake, busybox, tmp_path):
    project = write_repo(
        tmp_path, fake.host, image_extra={"other": 'platforms = ["linux/s390x"]\n'}
    )
    plan, _ = planned(project)
    status, reason = statuses(plan)["other"]
    assert status == "unknown"
    assert reason.startswith(f"base {fake.host}/seed/busybox:stable (linux/s390x): ")
    assert "no image for platform linux/s390x" in reason
    assert statuses(plan)["base"][0] == "missing"


def test_unreachable_registry_is_unknown(tmp_path):
    solo = {"solo": "FROM scratch\nCOPY hello.txt /hello.txt\n"}
    project = write_repo(tmp_path, UNREACHABLE, extra_images=solo)
    (tmp_path / "ci" / "solo" / "hello.txt").write_text("hi\n")
    sent: list[str] = []
    client = make_client(project, deadline=0.3, on_request=lambda m, u: sent.append(m))
    client.backoff_base = 0.01
    plan = make_plan(project, client=client)
    found = statuses(plan)
    written = f"{UNREACHABLE}/seed/busybox:stable"
    refused = f"{UNREACHABLE}: connection refused after "
    assert found["base"][0] == found["other"][0] == "unknown"
    assert found["base"][1].startswith(f"base {written} (linux/amd64): {refused}")
    assert found["app"][1].startswith(f"sibling base: base {written}")
    assert found["solo"][0] == "unknown"
    assert found["solo"][1].startswith(f"registry: {refused}")
    assert plan.by_name()["solo"].key is not None  # keyed (no base), presence unknown
    assert {"GET", "HEAD"} == set(sent)


def test_siblings_are_keyed_and_pinned_to_their_key_tag(fake, busybox, tmp_path):
    project = write_repo(tmp_path, fake.host)
    plan, _ = planned(project)
    base, app, tool = (plan.by_name()[n] for n in ("base", "app", "tool"))
    assert base.key is not None and app.material is not None and tool.material is not None
    assert app.depends_on == tool.depends_on == ("base",)
    assert app.material.bases == (BaseInput(ref="base", sibling="base", sibling_key=base.key),)
    written = f"{fake.host}/ci/base:latest"
    assert tool.material.bases == (BaseInput(ref=written, sibling="base", sibling_key=base.key),)
    sibling = f"docker-image://{fake.host}/ci/base:{base.tag}"
    assert app.pins == {"base": sibling}
    assert tool.pins == {f"{fake.host}/ci/base": sibling}  # BuildKit drops ":latest"
    # The sibling's content reaches its dependents' keys, and only theirs.
    (tmp_path / "ci" / "base" / "hello.txt").write_text("changed\n")
    again, _ = planned(load_project(tmp_path / "prebuild.toml"))
    changed = {p.name for p, q in zip(plan.images, again.images, strict=True) if p.key != q.key}
    assert changed == {"base", "app", "tool"}


def test_named_plan_pulls_in_the_siblings_it_builds_from(fake, busybox, tmp_path):
    project = write_repo(tmp_path, fake.host)
    plan, sent = planned(project, names=["app"])
    assert [p.name for p in plan.images] == ["app", "base"]
    assert len([s for s in sent if s.startswith("HEAD")]) == 2


def test_offline_sends_nothing_and_keys_are_provisional(fake, busybox, tmp_path):
    project = write_repo(tmp_path, fake.host)
    online, _ = planned(project)
    asked = len(fake.log)
    plan, sent = planned(project, offline=True)
    assert sent == [] and len(fake.log) == asked
    reason = "offline: registry not asked; key is provisional"
    assert statuses(plan) == {n: ("unknown", reason) for n in ("base", "app", "tool", "other")}
    assert all(p.material and p.material.provisional for p in plan.images)
    assert all(p.key for p in plan.images)
    assert not {p.key for p in plan.images} & {p.key for p in online.images}
    base = plan.by_name()["base"]
    assert base.material is not None
    assert base.material.bases == (BaseInput(ref=f"{fake.host}/seed/busybox:stable"),)
    assert base.pins == {}


@pytest.mark.parametrize(
    ("age", "status", "reason"),
    [
        (timedelta(days=8), "stale", "built 192h ago, refresh is 168h"),
        (timedelta(days=6, hours=23), "present", ""),
        (None, "missing", "{tag} not in registry"),
    ],
)
def test_refresh_makes_old_key_tags_stale(fake, busybox, tmp_path, age, status, reason):
    project = write_repo(tmp_path, fake.host, image_extra={"base": BASE_EXTRA + 'refresh = "7d"'})
    first, _ = planned(project)
    if age is not None:
        created = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
        publish(fake, first, "base", created=created)
    plan, sent = planned(project, now=NOW)
    base = plan.by_name()["base"]
    assert (base.status, base.reason) == (status, reason.format(tag=base.tag))
    # A refresh image costs one GET (its created annotation) instead of the HEAD.
    assert [s for s in sent if "/ci/base/" in s] == [f"GET /v2/ci/base/manifests/{base.tag}"]


def test_select_names_and_did_you_mean(fake, tmp_path):
    project = write_repo(tmp_path, fake.host)
    assert [s.name for s in select(project, [])] == ["base", "app", "tool", "other"]
    assert [s.name for s in select(project, ["tool", "base"])] == ["tool", "base"]
    with pytest.raises(UsageError) as info:
        select(project, ["base", "ap"])
    assert info.value.message == f"no image named 'ap' in {tmp_path / 'prebuild.toml'}"
    assert info.value.hint == "did you mean 'app'?"
    assert info.value.exit_code == 2
    with pytest.raises(UsageError) as info:
        make_plan(project, ["zzz"], offline=True)
    assert info.value.hint == "images: app, base, other, tool"
    assert fake.log == []


def test_an_image_named_twice_is_planned_once(fake, tmp_path):
    project = write_repo(tmp_path, fake.host)
    assert [s.name for s in select(project, ["app", "app"])] == ["app"]
    plan = make_plan(project, ["app", "app"], offline=True)
    assert [p.name for p in plan.images] == ["app", "base"]


def test_plan_json_has_the_contract_keys(fake, busybox, tmp_path):
    project = write_repo(tmp_path, fake.host)
    plan, _ = planned(project)
    doc = plan.as_json()
    assert list(doc) == ["images"]
    contract = {"name", "key", "ref", "platforms", "status", "reason", "inputs", "bases"}
    for entry in doc["images"]:  # type: ignore[attr-defined]
        assert set(entry) == contract | {"depends_on", "provisional"}
    app = plan.by_name()["app"]
    assert app.as_json() == {
        "name": "app",
        "key": app.key,
        "ref": f"{fake.host}/ci/app:{app.tag}",
        "platforms": ["linux/amd64"],
        "status": "missing",
        "reason": f"{app.tag} not in registry",
        "inputs": ["ci/app/app.sh"],
        "bases": ["base"],
        "depends_on": ["base"],
        "provisional": False,
    }


# -- platforms -------------------------------------------------------------------------------


def test_a_multi_platform_key_is_the_same_on_every_machine(fake, busybox, tmp_path):
    """Explicit platforms are keyed as written: an amd64 nightly host and an arm64 runner
    compute the same key (only a bare `linux` means the machine's own platform)."""
    project = write_repo(
        tmp_path, fake.host, image_extra={"other": 'platforms = ["linux/arm64", "linux/amd64"]'}
    )
    on_amd64, _ = planned(project, native_platform=lambda: "linux/amd64")
    on_arm64, _ = planned(project, native_platform=lambda: "linux/arm64")
    key = on_amd64.by_name()["other"].key
    assert key is not None and on_arm64.by_name()["other"].key == key
    material = on_amd64.by_name()["other"].material
    assert material is not None
    (base,) = material.bases
    _, digests = busybox
    assert (
        base.digest == f"linux/amd64={digests['linux/amd64']},linux/arm64={digests['linux/arm64']}"
    )


def test_the_order_platforms_are_listed_in_does_not_change_the_key(fake, busybox, tmp_path):
    keys = []
    for where, platforms in (
        ("a", '["linux/arm64", "linux/amd64"]'),
        ("b", '["linux/amd64", "linux/arm64"]'),
    ):
        project = write_repo(
            tmp_path / where, fake.host, image_extra={"other": f"platforms = {platforms}"}
        )
        keys.append(planned(project)[0].by_name()["other"].key)
    assert None not in keys and keys[0] == keys[1]


def test_changing_platforms_changes_the_key(fake, busybox, tmp_path):
    one = write_repo(
        tmp_path / "a", fake.host, image_extra={"other": 'platforms = ["linux/arm64"]'}
    )
    two = write_repo(
        tmp_path / "b",
        fake.host,
        image_extra={"other": 'platforms = ["linux/arm64", "linux/amd64"]'},
    )
    keys = [planned(p)[0].by_name()["other"].key for p in (one, two)]
    assert None not in keys and keys[0] != keys[1]
