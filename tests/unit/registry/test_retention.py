"""Registry retention: the pure policy case by case, then `collect` against the fake registry."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from prebuild.errors import RegistryError
from prebuild.key.material import TAG_LENGTH
from prebuild.registry.client import RegistryClient
from prebuild.registry.manifests import CREATED
from prebuild.registry.media_types import OCI_INDEX, OCI_MANIFEST
from prebuild.registry.retention import (
    STORAGE_NOTE,
    TagInfo,
    bytes_freed,
    collect,
    is_key_tag,
    plan_retention,
)
from tests.unit.registry.test_client import FakeRegistry, dumps

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY = 86400


def key(n: int) -> str:
    """A distinct key tag; n orders nothing (creation times do)."""
    return hashlib.sha256(str(n).encode()).hexdigest()[:TAG_LENGTH]


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def info(tag: str, *, days_old: float | None, digest: str | None = None, size: int = 1) -> TagInfo:
    created = None if days_old is None else NOW - timedelta(days=days_old)
    return TagInfo(tag, digest or sha(tag), created, size)


def plan(tags: list[TagInfo], keep: int = 2, max_age: int | None = None, protected=("latest",)):
    kept, deleted = plan_retention(
        tags, keep=keep, max_age_seconds=max_age, protected_tags=set(protected), now=NOW
    )
    return dict(kept), [d.tag for d in deleted]


# -- policy -------------------------------------------------------------------------------------


def test_key_tags_are_exactly_tag_length_lowercase_hex() -> None:
    assert is_key_tag(key(1))
    assert not is_key_tag(key(1).upper())
    assert not is_key_tag(key(1) + "0")
    assert not is_key_tag(key(1)[:-1])
    assert not is_key_tag("latest")
    assert not is_key_tag("g" * TAG_LENGTH)


def test_keeps_newest_n_and_deletes_the_rest_oldest_first() -> None:
    tags = [info(key(i), days_old=i) for i in range(5)]
    kept, deleted = plan(tags, keep=2)
    assert kept == {key(0): "newest 2", key(1): "newest 2"}
    assert deleted == [key(4), key(3), key(2)]


def test_keep_zero_and_keep_more_than_present() -> None:
    tags = [info(key(i), days_old=i) for i in range(3)]
    assert plan(tags, keep=0)[1] == [key(2), key(1), key(0)]
    assert plan(tags, keep=10) == ({key(i): "newest 10" for i in range(3)}, [])
    with pytest.raises(ValueError):
        plan(tags, keep=-1)


def test_max_age_keeps_young_tags_beyond_keep() -> None:
    tags = [info(key(i), days_old=i) for i in range(6)]
    kept, deleted = plan(tags, keep=1, max_age=3 * DAY)
    assert kept == {key(0): "newest 1", key(1): "younger than 3d", key(2): "younger than 3d"}
    assert deleted == [key(5), key(4), key(3)]  # exactly 3 days old is not younger


def test_future_created_time_counts_as_young() -> None:
    kept, deleted = plan([info(key(0), days_old=9), info(key(1), days_old=-1)], keep=0, max_age=DAY)
    assert kept == {key(1): "younger than 1d"} and deleted == [key(0)]


def test_unknown_created_time_is_kept_and_not_counted_in_keep() -> None:
    tags = [info(key(0), days_old=None), info(key(1), days_old=5), info(key(2), days_old=9)]
    kept, deleted = plan(tags, keep=1)
    assert kept == {key(0): "created time unknown", key(1): "newest 1"}
    assert deleted == [key(2)]


def test_non_key_tags_are_never_candidates() -> None:
    others = ["latest", "buildcache", "v1.2", "main", key(0)[:-1], key(0).upper()]
    tags = [info(t, days_old=100) for t in others] + [info(key(1), days_old=50)]
    kept, deleted = plan(tags, keep=0, protected=("latest", "buildcache"))
    assert deleted == [key(1)]
    assert kept["latest"] == kept["buildcache"] == "moving tag"
    assert kept["v1.2"] == kept["main"] == "not a key tag"
    assert set(kept) == set(others)


def test_protected_key_tag_is_kept() -> None:
    tags = [info(key(0), days_old=100), info(key(1), days_old=200)]
    kept, deleted = plan(tags, keep=0, protected=(key(1),))
    assert kept == {key(1): "protected tag"} and deleted == [key(0)]


def test_digest_shared_with_latest_keeps_the_old_key_tag() -> None:
    old = info(key(9), days_old=90)
    tags = [
        info(key(0), days_old=1),
        old,
        info("latest", days_old=None, digest=old.digest),
        info(key(8), days_old=80),
    ]
    kept, deleted = plan(tags, keep=1)
    assert kept[key(9)] == "same manifest as 'latest'"
    assert kept["latest"] == "moving tag"
    assert deleted == [key(8)]


def test_digest_shared_between_key_tags_follows_the_kept_one() -> None:
    shared = sha("same image")
    tags = [
        info(key(0), days_old=1, digest=shared),
        info(key(1), days_old=50, digest=shared),
        info(key(2), days_old=60, digest=shared),
        info(key(3), days_old=70),
    ]
    kept, deleted = plan(tags, keep=1, protected=())
    assert kept == {
        key(0): "newest 1",
        key(1): f"same manifest as '{key(0)}'",
        key(2): f"same manifest as '{key(0)}'",
    }
    assert deleted == [key(3)]


def test_doomed_tags_sharing_a_digest_are_both_listed() -> None:
    shared = sha("old image")
    tags = [info(key(0), days_old=1), info(key(1), days_old=50, digest=shared)]
    tags.append(info(key(2), days_old=60, digest=shared))
    assert plan(tags, keep=1)[1] == [key(2), key(1)]


def test_digest_shared_with_unprotected_non_key_tag_is_kept() -> None:
    old = info(key(1), days_old=90)
    tags = [info(key(0), days_old=1), old, info("v1.0", days_old=None, digest=old.digest)]
    kept, deleted = plan(tags, keep=1, protected=())
    assert kept[key(1)] == "same manifest as 'v1.0'" and deleted == []


def test_report_order_other_tags_first_then_newest_key_tags() -> None:
    tags = [info(key(i), days_old=i) for i in (3, 1, 2)] + [info("latest", days_old=None)]
    tags.append(info(key(7), days_old=None))
    kept, _ = plan_retention(tags, keep=3, max_age_seconds=None, protected_tags=set(), now=NOW)
    assert [t for t, _ in kept] == ["latest", key(1), key(2), key(3), key(7)]


def test_naive_datetimes_are_utc() -> None:
    naive = TagInfo(key(1), sha("x"), (NOW - timedelta(hours=1)).replace(tzinfo=None), 1)
    kept, _ = plan_retention(
        [naive], keep=0, max_age_seconds=7200, protected_tags=set(), now=NOW.replace(tzinfo=None)
    )
    assert kept == [(key(1), "younger than 2h")]


def test_bytes_freed_counts_unshared_blobs_once() -> None:
    a = TagInfo("a", "sha256:a", None, 0, (("m1", 10), ("base", 100), ("own", 5)))
    b = TagInfo("b", "sha256:b", None, 0, (("m2", 20), ("own", 5), ("other", 7)))
    kept = TagInfo("k", "sha256:k", None, 0, (("m3", 30), ("base", 100)))
    assert bytes_freed([a, b], [kept]) == 10 + 5 + 20 + 7


# -- collect against a fake registry ------------------------------------------------------------

REPO = "ci/app"


@pytest.fixture
def client() -> RegistryClient:
    c = RegistryClient(deadline=5.0)
    c.backoff_base = 0.01
    return c


def push(
    fake: FakeRegistry,
    *tags: str,
    days_old: float | None,
    layers: dict[str, int],
    repo: str = REPO,
    now: datetime = NOW,
) -> tuple[str, int]:
    """An image manifest under `tags`, created `days_old` before `now`: (digest, manifest +
    config + layer bytes)."""
    config = dumps({"tags": list(tags), "layers": sorted(layers)})
    config_digest = fake.put_blob(config)
    body: dict = {
        "schemaVersion": 2,
        "config": {"digest": config_digest, "size": len(config)},
        "layers": [{"digest": sha(name), "size": size} for name, size in layers.items()],
    }
    if days_old is not None:
        body["annotations"] = {CREATED: (now - timedelta(days=days_old)).isoformat()}
    digest = fake.put_manifest(repo, None, body, OCI_MANIFEST)
    for tag in tags:
        fake.manifests[(repo, tag)] = fake.manifests[(repo, digest)]
    fake.tags.setdefault(repo, []).extend(tags)
    return digest, len(fake.manifests[(repo, digest)][1]) + len(config) + sum(layers.values())


def deletes(fake: FakeRegistry) -> list[str]:
    return sorted(p.split()[1].rsplit("/", 1)[1] for p in fake.paths() if p.startswith("DELETE"))


@pytest.fixture
def repo(fake: FakeRegistry) -> dict[str, tuple[str, int]]:
    """newest k0, k1; k2 shares latest's digest; k3, k4 old; buildcache; k5 of unknown age."""
    images = {
        "k0": push(fake, key(0), days_old=1, layers={"base": 1000, "k0": 10}),
        "k1": push(fake, key(1), days_old=2, layers={"base": 1000, "k1": 20}),
        "k2": push(fake, key(2), "latest", days_old=30, layers={"base": 1000, "k2": 30}),
        "k3": push(fake, key(3), days_old=40, layers={"base": 1000, "old": 400, "k3": 40}),
        "k4": push(fake, key(4), days_old=50, layers={"base": 1000, "old": 400, "k4": 50}),
        "k5": push(fake, key(5), days_old=None, layers={"k5": 60}),
        "cache": push(fake, "buildcache", days_old=None, layers={"base": 1000, "k0": 10}),
    }
    return images


def run(fake, client, *, apply: bool, keep: int = 2):
    return collect(
        client,
        fake.ref(REPO),
        keep=keep,
        max_age_seconds=None,
        protected_tags={"latest", "buildcache"},
        apply=apply,
        now=NOW,
    )


def test_dry_run_sends_no_delete(fake, client, repo) -> None:
    report = run(fake, client, apply=False)
    assert deletes(fake) == [] and report.dry_run and not report.refused
    assert report.image == f"{fake.host}/{REPO}"
    assert [i.tag for i in report.deleted] == [key(4), key(3)]
    assert [(i.digest, i.size) for i in report.deleted] == [repo["k4"], repo["k3"]]
    assert report.deleted[0].created == NOW - timedelta(days=50)
    assert dict(report.kept) == {
        "buildcache": "moving tag",
        "latest": "moving tag",
        key(0): "newest 2",
        key(1): "newest 2",
        key(2): "same manifest as 'latest'",
        key(5): "created time unknown",
    }
    # "base" is shared with kept images: only the two manifests, configs, "old", k3, k4 go
    freed = repo["k3"][1] + repo["k4"][1] - 2 * 1000 - 400
    assert report.bytes_freed == freed
    assert "garbage" in STORAGE_NOTE
    # distribution 2.8's --delete-untagged deletes the children of multi-platform indexes
    assert "do not add --delete-untagged" in STORAGE_NOTE


def test_apply_deletes_each_chosen_digest_once(fake, client, repo) -> None:
    key_six = push(fake, key(6), days_old=60, layers={"k4": 50})[0]
    fake.manifests[(REPO, key(7))] = fake.manifests[(REPO, key_six)]  # same image, two keys
    fake.tags[REPO].append(key(7))
    report = run(fake, client, apply=True)
    assert deletes(fake) == sorted([repo["k3"][0], repo["k4"][0], key_six])
    assert {i.tag for i in report.deleted} == {key(3), key(4), key(6), key(7)}
    assert not report.dry_run and not report.refused and report.not_deleted == []


def test_refused_deletes_stop_and_are_reported(fake, client, repo) -> None:
    fake.delete_status = 405
    report = run(fake, client, apply=True)
    assert report.refused and report.deleted == [] and report.bytes_freed == 0
    assert [i.tag for i in report.not_deleted] == [key(4), key(3)]
    assert len(deletes(fake)) == 1


def test_unsupported_error_code_is_a_refusal(fake, client, repo) -> None:
    fake.delete_status = 400  # distribution with deletes disabled: UNSUPPORTED
    assert run(fake, client, apply=True).refused


def test_other_delete_errors_propagate(fake, client, repo) -> None:
    fake.delete_status = 202
    fake.fail(f"/v2/{REPO}/manifests/sha256:", 409)
    with pytest.raises(RegistryError, match="409"):
        run(fake, client, apply=True)


def test_transient_errors_propagate(fake, client, repo) -> None:
    def flaky(ref):
        raise RegistryError("connection reset", transient=True)

    client.head_manifest = flaky  # type: ignore[method-assign]
    with pytest.raises(RegistryError, match="connection reset"):
        run(fake, client, apply=True)
    assert deletes(fake) == []


def test_empty_or_missing_repository(fake, client) -> None:
    report = run(fake, client, apply=True)
    assert report.kept == [] and report.deleted == []
    assert fake.paths() == [f"GET /v2/{REPO}/tags/list"]


def test_index_size_sums_its_manifests(fake, client) -> None:
    children = []
    sizes = 0
    for arch in ("amd64", "arm64"):
        digest, size = push(fake, days_old=None, layers={arch: 100})
        children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": 1,
                         "platform": {"os": "linux", "architecture": arch}})  # fmt: skip
        sizes += size
    created = {CREATED: (NOW - timedelta(days=9)).isoformat()}
    body = {"schemaVersion": 2, "manifests": children, "annotations": created}
    index = fake.put_manifest(REPO, key(1), body, OCI_INDEX)
    fake.tags[REPO] = [key(1)]
    report = run(fake, client, apply=False, keep=0)
    (deleted,) = report.deleted
    assert deleted.digest == index
    assert deleted.size == len(fake.manifests[(REPO, index)][1]) + sizes
    assert deleted.created == NOW - timedelta(days=9)
    assert report.bytes_freed == deleted.size


def test_tag_vanishing_during_gc_is_skipped(fake, client, repo) -> None:
    fake.tags[REPO].append(key(42))  # listed, but HEAD says 404
    report = run(fake, client, apply=False)
    assert key(42) not in dict(report.kept) and key(42) not in {i.tag for i in report.deleted}


# -- multi-platform indexes ------------------------------------------------------------------


def index_of(fake: FakeRegistry, tag: str, days_old: float, *layers: str) -> tuple[str, list[str]]:
    """A two-platform index under `tag`: (index digest, child digests)."""
    children = []
    for arch in ("amd64", "arm64"):
        digest, _ = push(fake, days_old=None, layers={f"{layer}-{arch}": 10 for layer in layers})
        children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": 1,
                         "platform": {"os": "linux", "architecture": arch}})  # fmt: skip
    created = {CREATED: (NOW - timedelta(days=days_old)).isoformat()}
    body = {"schemaVersion": 2, "manifests": children, "annotations": created}
    index = fake.put_manifest(REPO, tag, body, OCI_INDEX)
    fake.tags.setdefault(REPO, []).append(tag)
    return index, [c["digest"] for c in children]


def test_a_deleted_index_takes_its_platform_manifests_with_it(fake, client) -> None:
    """Untagged, the children would keep their layers through a plain registry GC forever
    (and the GC that deletes untagged manifests breaks kept indexes on distribution 2.8)."""
    new, new_children = index_of(fake, key(0), 1, "new")
    old, old_children = index_of(fake, key(1), 9, "old")
    shared, _ = index_of(fake, key(2), 20, "x")
    # an older index listing one of the newest index's children: that child must stay
    fake.manifests[(REPO, key(2))] = fake.manifests[(REPO, new)]
    report = run(fake, client, apply=True, keep=1)
    assert {i.tag for i in report.deleted} == {key(1)}  # key(2) shares key(0)'s manifest
    assert sorted(report.children_deleted) == sorted(old_children)
    assert deletes(fake) == sorted([old, *old_children])
    assert set(new_children).isdisjoint(deletes(fake)) and shared not in deletes(fake)


def test_a_dry_run_lists_the_children_it_would_delete(fake, client) -> None:
    index_of(fake, key(0), 1, "new")
    _, old_children = index_of(fake, key(1), 9, "old")
    report = run(fake, client, apply=False, keep=1)
    assert sorted(report.children_deleted) == sorted(old_children)
    assert deletes(fake) == []


def test_platform_tags_of_a_split_build_follow_their_key_tag(fake, client) -> None:
    _, new_children = index_of(fake, key(0), 1, "new")
    old, old_children = index_of(fake, key(1), 9, "old")
    for digest, arch in zip(new_children, ("amd64", "arm64"), strict=True):
        fake.manifests[(REPO, f"{key(0)}-linux-{arch}")] = fake.manifests[(REPO, digest)]
        fake.tags[REPO].append(f"{key(0)}-linux-{arch}")
    for digest, arch in zip(old_children, ("amd64", "arm64"), strict=True):
        fake.manifests[(REPO, f"{key(1)}-linux-{arch}")] = fake.manifests[(REPO, digest)]
        fake.tags[REPO].append(f"{key(1)}-linux-{arch}")
    report = run(fake, client, apply=True, keep=1)
    kept = dict(report.kept)
    assert kept[f"{key(0)}-linux-arm64"] == f"platform tag of '{key(0)}'"
    assert f"{key(1)}-linux-arm64" not in kept  # deleted as the old index's child
    assert deletes(fake) == sorted([old, *old_children])
