"""S3 cache gc against moto: exactly the old orphans go, nothing goes on partial knowledge."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from prebuild.cache.s3.client import make_client
from prebuild.cache.s3.gc import DELETE_BATCH, GcAbortedError, collect_garbage, setup_lifecycle
from prebuild.cache.s3.layout import blob_key, manifest_key
from prebuild.model import S3Settings

SETTINGS = S3Settings(bucket="ci-cache", prefix="ci/")
GRACE = 6 * 3600


@pytest.fixture
def client() -> Any:
    client = make_client(SETTINGS)
    client.create_bucket(Bucket=SETTINGS.bucket)
    return client


@contextmanager
def s3_clock(when: datetime) -> Iterator[None]:
    """Objects written inside get LastModified = `when` (moto's clock, no sleeping)."""
    with mock.patch("moto.s3.models.utcnow", return_value=when.replace(tzinfo=None)):
        yield


def blob(client: Any, content: bytes) -> tuple[str, str]:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    key = blob_key(SETTINGS, digest)
    client.put_object(Bucket=SETTINGS.bucket, Key=key, Body=content)
    return digest, key


def manifest(client: Any, name: str, digests: list[str]) -> None:
    layers = [
        {
            "blob": d,
            "parent": -1,
            "annotations": {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "diffID": "sha256:" + hashlib.sha256(d.encode()).hexdigest(),
                "size": 10,
                "createdAt": "2024-06-01T08:00:00Z",
            },
        }
        for d in digests
    ]
    records = [{"digest": "sha256:" + "0" * 64, "layers": [{"layer": 0}]}] if digests else []
    body = json.dumps({"layers": layers, "records": records})
    client.put_object(Bucket=SETTINGS.bucket, Key=manifest_key(SETTINGS, name), Body=body)


def keys(client: Any) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=SETTINGS.bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


@pytest.fixture
def bucket(client: Any) -> dict[str, Any]:
    """live (named by manifests), orphan-old, orphan-young; `now` is two days in the future."""
    now = datetime.now(UTC) + timedelta(days=2)
    live_a, live_a_key = blob(client, b"live layer a")
    live_b, live_b_key = blob(client, b"live layer b" * 3)
    _, old_key = blob(client, b"orphan, old" * 7)
    with s3_clock(now - timedelta(hours=1)):
        _, young_key = blob(client, b"orphan, young: an export in flight")
    manifest(client, "app", [live_a, live_b])
    manifest(client, "org/tool", [live_b])
    return {
        "now": now,
        "live": {live_a_key, live_b_key},
        "old": (old_key, len(b"orphan, old" * 7)),
        "young": (young_key, len(b"orphan, young: an export in flight")),
    }


def gc(client: Any, now: datetime, *, apply: bool = True):
    return collect_garbage(SETTINGS, grace_seconds=GRACE, apply=apply, now=now, client=client)


def test_gc_deletes_exactly_the_old_orphans(client: Any, bucket: dict[str, Any]) -> None:
    report = gc(client, bucket["now"])
    assert report.deleted == [bucket["old"]]
    assert report.kept_young == [bucket["young"]]
    assert (report.referenced, report.manifests) == (2, 2)
    assert report.bytes_deleted == bucket["old"][1]
    assert report.dry_run is False and report.failed == []
    remaining = keys(client)
    assert bucket["old"][0] not in remaining
    assert bucket["live"] | {bucket["young"][0]} <= remaining


def test_young_blobs_are_never_deleted(client: Any, bucket: dict[str, Any]) -> None:
    report = gc(client, datetime.now(UTC))  # nothing is past the grace period yet
    assert report.deleted == []
    assert sorted(report.kept_young) == sorted([bucket["old"], bucket["young"]])


def test_dry_run_deletes_nothing(client: Any, bucket: dict[str, Any]) -> None:
    before = keys(client)
    report = gc(client, bucket["now"], apply=False)
    assert report.dry_run is True
    assert report.deleted == [bucket["old"]]  # what WOULD go
    assert keys(client) == before


def test_a_corrupt_manifest_aborts_before_deleting(client: Any, bucket: dict[str, Any]) -> None:
    client.put_object(Bucket=SETTINGS.bucket, Key="ci/manifests/broken", Body=b'{"layers": [')
    before = keys(client)
    with pytest.raises(GcAbortedError, match="ci/manifests/broken") as info:
        gc(client, bucket["now"])
    assert "nothing deleted" in str(info.value)
    assert keys(client) == before


def test_a_manifest_written_during_gc_protects_its_blobs(client: Any, bucket) -> None:
    """The second look at the manifests, right before deleting, sees a new export."""
    old_digest = bucket["old"][0].removeprefix("ci/blobs/")
    writer = make_client(SETTINGS)
    seen: list[str] = []

    def late_export(params: dict[str, Any], **_: Any) -> None:
        if "Prefix" not in params:
            return  # the test's own listing
        seen.append(params["Prefix"])
        if params["Prefix"] == "ci/blobs/":
            manifest(writer, "late", [old_digest])

    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", late_export)
    report = gc(client, bucket["now"])
    assert seen == ["ci/manifests/", "ci/blobs/", "ci/manifests/"]
    assert report.deleted == []
    assert bucket["old"][0] in keys(client)


def test_only_digest_keys_of_this_prefix_are_candidates(client: Any) -> None:
    now = datetime.now(UTC) + timedelta(days=2)
    for key in ("ci/blobs/sub/blobs/x", "ci/blobs/README", "other/blobs/sha256:" + "a" * 64):
        client.put_object(Bucket=SETTINGS.bucket, Key=key, Body=b"not ours")
    report = gc(client, now)
    assert report.deleted == []
    assert sorted(report.ignored) == ["ci/blobs/README", "ci/blobs/sub/blobs/x"]
    assert len(keys(client)) == 3


def test_deletes_are_batched(client: Any) -> None:
    now = datetime.now(UTC) + timedelta(days=2)
    for n in range(DELETE_BATCH + 5):
        blob(client, f"orphan {n}".encode())
    manifest(client, "empty", [])
    batches: list[int] = []
    client.meta.events.register(
        "before-parameter-build.s3.DeleteObjects",
        lambda params, **_: batches.append(len(params["Delete"]["Objects"])),
    )
    report = gc(client, now)
    assert batches == [DELETE_BATCH, 5]
    assert len(report.deleted) == DELETE_BATCH + 5
    assert keys(client) == {"ci/manifests/empty"}


def test_lifecycle_rule_is_merged_not_replacing(client: Any) -> None:
    expire_logs = {
        "ID": "expire-logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    client.put_bucket_lifecycle_configuration(
        Bucket=SETTINGS.bucket, LifecycleConfiguration={"Rules": [expire_logs]}
    )
    assert setup_lifecycle(SETTINGS, days=2, client=client) is True
    rules = {
        r["ID"]: r for r in client.get_bucket_lifecycle_configuration(Bucket="ci-cache")["Rules"]
    }
    assert rules["expire-logs"]["Expiration"] == {"Days": 30}
    ours = rules["prebuild-abort-incomplete-uploads:ci/"]
    assert ours["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert ours["Filter"] == {"Prefix": "ci/"}
    assert setup_lifecycle(SETTINGS, days=2, client=client) is False  # already there
    assert setup_lifecycle(SETTINGS, days=3, client=client) is True  # updated in place
    rules = client.get_bucket_lifecycle_configuration(Bucket="ci-cache")["Rules"]
    assert sorted(r["ID"] for r in rules) == [
        "expire-logs",
        "prebuild-abort-incomplete-uploads:ci/",
    ]


def test_lifecycle_on_a_bucket_without_rules(client: Any) -> None:
    assert setup_lifecycle(S3Settings(bucket="ci-cache"), client=client) is True
    (rule,) = client.get_bucket_lifecycle_configuration(Bucket="ci-cache")["Rules"]
    assert rule["ID"] == "prebuild-abort-incomplete-uploads"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_a_blob_touched_after_listing_is_not_deleted(client: Any, monkeypatch) -> None:
    """An export that reuses an old orphan touches it before writing its manifest: gc re-reads
    the age right before deleting and keeps it."""
    import prebuild.cache.s3.gc as s3gc

    _, key = blob(client, b"reused by an export in flight")
    future = datetime.now(UTC) + timedelta(days=10)
    real_still_old = s3gc._still_old

    def touched_meanwhile(client, bucket, candidates, clock, grace):
        return real_still_old(client, bucket, candidates, clock - timedelta(days=10), grace)

    monkeypatch.setattr(s3gc, "_still_old", touched_meanwhile)
    report = collect_garbage(SETTINGS, grace_seconds=GRACE, apply=True, now=future, client=client)
    assert report.deleted == []
    assert client.head_object(Bucket=SETTINGS.bucket, Key=key)["ContentLength"] > 0
