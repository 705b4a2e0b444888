"""After a push, prebuild deletes exactly the manifests it left unused, nothing a tag needs."""

from __future__ import annotations

import pytest

from prebuild.registry import supersede
from prebuild.registry.client import RegistryClient
from tests.unit.registry.test_retention import REPO, deletes, index_of, key, push


@pytest.fixture
def client() -> RegistryClient:
    found = RegistryClient(deadline=5.0)
    found.backoff_base = 0.01
    return found


def ref(fake, tag: str) -> str:
    return f"{fake.host}/{REPO}:{tag}"


def test_the_previous_cache_manifest_is_deleted_after_a_new_export(fake, client) -> None:
    old_cache, _ = push(fake, "buildcache", days_old=None, layers={"cache-1": 10})
    before = supersede.current(client, [ref(fake, "buildcache"), ref(fake, key(9))])
    assert before == {ref(fake, "buildcache"): old_cache}  # the new key tag did not exist
    push(fake, "buildcache", days_old=None, layers={"cache-2": 10})  # the build's export
    done = supersede.cleanup(client, before)
    assert done.deleted == [old_cache] and deletes(fake) == [old_cache]


def test_a_moved_tag_still_named_by_another_tag_is_kept(fake, client) -> None:
    """`latest` moves to the new image; the old one is still its key tag's."""
    old, children = index_of(fake, key(1), 5, "old")
    fake.manifests[(REPO, "latest")] = fake.manifests[(REPO, old)]
    fake.tags[REPO].append("latest")
    before = supersede.current(client, [ref(fake, "latest")])
    new, _ = index_of(fake, key(2), 1, "new")
    fake.manifests[(REPO, "latest")] = fake.manifests[(REPO, new)]
    done = supersede.cleanup(client, before)
    assert done.deleted == [] and sorted(done.kept) == sorted([old, *children])
    assert deletes(fake) == []


def test_a_rebuilt_key_tag_drops_its_old_index_and_children(fake, client) -> None:
    old, old_children = index_of(fake, key(1), 9, "v1")
    before = supersede.current(client, [ref(fake, key(1))])
    fake.tags[REPO].remove(key(1))
    index_of(fake, key(1), 0, "v2")  # a refresh re-pushed the same key
    done = supersede.cleanup(client, before)
    assert sorted(done.deleted) == sorted([old, *old_children])


def test_nothing_moved_costs_no_listing(fake, client) -> None:
    push(fake, "buildcache", days_old=None, layers={"c": 1})
    before = supersede.current(client, [ref(fake, "buildcache")])
    sent = len(fake.paths())
    assert supersede.cleanup(client, before).deleted == []
    assert [p.split()[0] for p in fake.paths()[sent:]] == ["HEAD"]  # one HEAD, no tags/list


def test_a_registry_refusing_deletes_is_reported(fake, client) -> None:
    push(fake, "buildcache", days_old=None, layers={"c": 1})
    before = supersede.current(client, [ref(fake, "buildcache")])
    push(fake, "buildcache", days_old=None, layers={"d": 1})
    fake.delete_status = 405
    assert supersede.cleanup(client, before).refused
