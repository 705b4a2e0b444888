"""S3 caches on the real stack: s3-sync round trips through BuildKit's own s3 layout, native s3
is refused up front on the docker driver, and S3 gc deletes exactly what no build needs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import requests

from prebuild.cache.s3.client import make_client
from prebuild.cache.s3.gc import collect_garbage
from prebuild.model import S3Settings
from tests.integration.cachecheck import (
    Run,
    S3Client,
    build,
    check_bucket_layout,
    check_s3_cache,
    gc_json,
    new_bucket,
    objects,
    prebuild,
    project,
    s3_cache,
)
from tests.integration.conftest import Stack, wipe_engine, write

PREFIX = "cache/"
STABLE_STEPS = ("RUN echo stable-step", "COPY stable.txt", "RUN cat /in/stable.txt")
CHANGED_STEPS = ("COPY changing.txt", "RUN cat /in/changing.txt")


@dataclass
class SyncedRepo:
    """A project whose image `app` was built twice (engine wiped in between, changing.txt
    edited), with the blobs each build's cache manifest referenced."""

    stack: Stack
    repo: Path
    bucket: str
    client: S3Client
    first: Run
    second: Run
    refs_first: dict[str, int]
    refs_second: dict[str, int]

    def rebuild(self, text: str) -> Run:
        """Wipe the engine (a fresh runner), edit the later input, build again."""
        wipe_engine(self.stack.docker)
        write(self.repo / "app" / "changing.txt", f"{text}\n")
        return build(self.stack, self.repo)

    def settings(self) -> S3Settings:
        return S3Settings(
            bucket=self.bucket,
            endpoint_url=self.stack.s3_endpoint,
            use_path_style=True,
            prefix=PREFIX,
        )


def synced_twice(stack: Stack, tmp_path: Path, unique: str) -> SyncedRepo:
    client = new_bucket(stack, unique)
    repo = project(
        tmp_path,
        stack,
        registry=f"{stack.registry}/{unique}",
        cache=s3_cache(unique, prefix=PREFIX),
        images={"app": ("stable.txt", "changing.txt")},
    )
    wipe_engine(stack.docker)
    first = build(stack, repo)
    refs_first = check_s3_cache(client, unique, PREFIX, "app")
    synced = SyncedRepo(stack, repo, unique, client, first, first, refs_first, {})
    synced.second = synced.rebuild("changed once")
    synced.refs_second = check_s3_cache(client, unique, PREFIX, "app")
    return synced


def test_s3_sync_round_trip_reuses_unchanged_steps_through_buildkits_s3_layout(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    synced = synced_twice(stack, tmp_path, unique)

    first = synced.first.image("app")
    assert first["status"] == "built" and (first["cache_hits"], first["cache_steps"]) == (0, 5)
    assert "no usable cache on S3 yet (cold build)" in synced.first.stderr

    second = synced.second.image("app")
    assert "imported cache from s3://" in synced.second.stderr
    assert (second["cache_hits"], second["cache_steps"]) == (3, 5)
    steps = synced.second.progress("app")
    assert [steps.step(s).cached for s in STABLE_STEPS] == [True, True, True]
    assert [steps.step(s).cached for s in CHANGED_STEPS] == [False, False]
    assert not steps.step("RUN echo stable-step").logged  # it did not run again
    assert "changed once" in synced.second.stderr  # the changed step did

    # The bucket holds BuildKit's s3 layout and nothing else; both manifests were complete
    # (checked right after each build), and the second reuses the unchanged layers' blobs.
    keys = objects(synced.client, synced.bucket)
    check_bucket_layout(list(keys), PREFIX)
    assert f"{PREFIX}manifests/app" in keys
    assert set(keys) - {f"{PREFIX}manifests/app"} == set(synced.refs_first) | set(
        synced.refs_second
    )
    shared = set(synced.refs_first) & set(synced.refs_second)
    assert len(shared) >= 4  # base layer + the 3 unchanged steps' layers (empty ones dedupe)
    assert set(synced.refs_second) - shared  # the changed steps made new blobs


def test_native_s3_backend_on_the_docker_driver_fails_before_building(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    client = new_bucket(stack, unique)
    cache = s3_cache(unique, prefix=PREFIX).replace('"s3-sync"', '"s3"')
    repo = project(
        tmp_path,
        stack,
        registry=f"{stack.registry}/{unique}",
        cache=cache,
        images={"app": ("stable.txt",)},
    )
    run = prebuild(stack, repo, "build", report=True)

    assert run.returncode == 2, run.stderr  # a configuration error: nothing was attempted
    assert "Traceback" not in run.stderr
    assert "driver is 'docker'" in run.stderr
    assert "docker-container" in run.stderr and "remote" in run.stderr  # a capable builder
    assert 'backend = "s3-sync"' in run.stderr  # or the backend that works here
    assert "docker buildx build" not in run.stderr and run.report is None
    assert _tags(stack, f"{unique}/app") is None  # nothing pushed
    assert objects(client, unique) == {}  # nothing exported


def _tags(stack: Stack, repo: str) -> list[str] | None:
    response = requests.get(f"http://{stack.registry}/v2/{repo}/tags/list", timeout=10)
    return None if response.status_code == 404 else response.json().get("tags")


def _put_orphans(client: S3Client, bucket: str, count: int) -> set[str]:
    keys = set()
    for i in range(count):
        data = os.urandom(512 + i)
        key = f"{PREFIX}blobs/sha256:{hashlib.sha256(data).hexdigest()}"
        client.put_object(Bucket=bucket, Key=key, Body=data)
        keys.add(key)
    return keys


def test_gc_deletes_exactly_the_orphans_older_than_the_grace_period(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    synced = synced_twice(stack, tmp_path, unique)
    client, bucket = synced.client, synced.bucket
    live = set(synced.refs_second) | {f"{PREFIX}manifests/app"}
    old = set(synced.refs_first) - set(synced.refs_second)  # the first build's changed steps
    assert old
    young = _put_orphans(client, bucket, 3)  # e.g. an export in flight: manifest not yet written
    before = objects(client, bucket)
    assert set(before) == live | old | young
    newest_old = max(before[k].modified for k in old)
    oldest_young = min(before[k].modified for k in young)
    assert newest_old < oldest_young, "two builds ran in between: S3 dates must differ"

    # Dry run (the CLI's default): reports, deletes nothing.
    dry = gc_json(stack, synced.repo, "--grace", "1s")
    (s3,) = dry["s3"]
    assert dry["dry_run"] and s3["dry_run"] and s3["manifests"] == 1
    assert s3["referenced"] == len(synced.refs_second)
    assert old <= {d["key"] for d in s3["deleted"]}
    assert objects(client, bucket) == before

    # --apply with the default grace (48h): everything here is younger, so nothing goes.
    applied = gc_json(stack, synced.repo, "--apply")
    (s3,) = applied["s3"]
    assert not s3["dry_run"] and s3["deleted"] == []
    assert {k["key"] for k in s3["kept_young"]} == old | young
    assert objects(client, bucket) == before

    # The age split, on the bucket's own clock: "now" is one grace period after the young
    # orphans were written, so they are exactly at the limit (kept) and the old ones beyond.
    grace = timedelta(hours=1)
    report = collect_garbage(
        synced.settings(),
        grace_seconds=int(grace.total_seconds()),
        apply=True,
        now=oldest_young + grace,
        client=make_client(synced.settings()),
    )
    assert {key for key, _ in report.deleted} == old
    assert {key for key, _ in report.kept_young} == young
    assert report.bytes_deleted == sum(before[k].size for k in old) and not report.failed
    assert set(objects(client, bucket)) == live | young
    assert check_s3_cache(client, bucket, PREFIX, "app") == synced.refs_second


def test_an_export_during_gc_apply_still_imports_fully(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    synced = synced_twice(stack, tmp_path, unique)
    old = set(synced.refs_first) - set(synced.refs_second)

    wipe_engine(stack.docker)
    write(synced.repo / "app" / "changing.txt", "changed during gc\n")
    report = synced.repo / ".concurrent.json"
    building = subprocess.Popen(
        [sys.executable, "-m", "prebuild", "build", "--plain", "--report", str(report)],
        cwd=synced.repo,
        env=stack.run_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deleted: set[str] = set()
    runs = 0
    try:
        while True:  # gc --apply back to back for as long as the build (and its export) runs
            doc = gc_json(stack, synced.repo, "--apply", "--grace", "3s")
            deleted |= {d["key"] for d in doc["s3"][0]["deleted"]}
            runs += 1
            if building.poll() is not None:
                break
    finally:
        _, err = building.communicate()
    assert building.returncode == 0, err[-4000:]
    assert runs >= 1
    print(f"\ngc --apply ran {runs} times during the export, deleting {len(deleted)} blobs")
    # A later gc, long after: everything unreferenced is old by then.
    later = collect_garbage(
        synced.settings(),
        grace_seconds=3600,
        apply=True,
        now=max(o.modified for o in objects(synced.client, synced.bucket).values())
        + timedelta(hours=2),
        client=make_client(synced.settings()),
    )
    deleted |= {key for key, _ in later.deleted}
    assert old <= deleted  # gc did collect while builds ran

    refs = check_s3_cache(synced.client, synced.bucket, PREFIX, "app")  # complete, verified
    assert not deleted & set(refs)
    after = synced.rebuild("changed after gc")
    assert "imported cache from s3://" in after.stderr
    steps = after.progress("app")
    assert [steps.step(s).cached for s in STABLE_STEPS] == [True, True, True]
    assert after.image("app")["cache_hits"] == 3
