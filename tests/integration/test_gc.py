"""Registry retention and the storage bound on the real stack: gc deletes old key tags only,
and after nightly cycles plus gc (prebuild's, then distribution's) what is stored stays close
to what the live images and caches need."""

from __future__ import annotations

import subprocess
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
    gc_json,
    new_bucket,
    objects,
    project,
    registry_live_and_total,
    s3_cache,
    s3_live_and_total,
)
from tests.integration.conftest import STACK, Stack, wipe_engine, write

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
NOISE = 100_000  # random bytes per image and night: each cycle's garbage, next to a 1 MB base
STABLE_STEPS = ("RUN echo stable-step", "COPY stable.txt", "RUN cat /in/stable.txt")


def head(stack: Stack, ref: str) -> int:
    """HTTP status of a manifest HEAD for `ref` (REGISTRY/REPO:TAG) on the stack registry."""
    repo, _, tag = ref.removeprefix(f"{stack.registry}/").rpartition(":")
    url = f"http://{stack.registry}/v2/{repo}/manifests/{tag}"
    return requests.head(url, headers={"Accept": ACCEPT}, timeout=10).status_code


def nightly(stack: Stack, repo: Path, night: int, *names: str) -> Run:
    """One scheduled cycle: a fresh runner, one input changed, `prebuild build`."""
    wipe_engine(stack.docker)
    for name in names:
        write(repo / name / "changing.txt", f"{name} night {night}\n")
    return build(stack, repo)


def test_retention_keeps_the_newest_key_tags_and_every_moving_tag(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    repo = project(
        tmp_path,
        stack,
        registry=f"{stack.registry}/{unique}",
        cache='[cache]\nbackend = "registry"\n',
        images={"app": ("changing.txt",)},
    )
    refs = [nightly(stack, repo, night, "app").image("app")["ref"] for night in range(4)]
    assert len(set(refs)) == 4
    image = f"{stack.registry}/{unique}/app"
    latest, cache = f"{image}:latest", f"{image}:buildcache"
    assert {head(stack, ref) for ref in [*refs, latest, cache]} == {200}
    older, newer = refs[:2], refs[2:]

    dry = gc_json(stack, repo, "--keep", "2")
    assert [d["tag"] for d in dry["registry"][0]["deleted"]] == [r.rsplit(":", 1)[1] for r in older]
    assert {head(stack, ref) for ref in [*refs, latest, cache]} == {200}  # a dry run

    applied = gc_json(stack, repo, "--apply", "--keep", "2")
    (report,) = applied["registry"]
    assert not report["dry_run"] and not report["refused"]
    assert {d["tag"] for d in report["deleted"]} == {r.rsplit(":", 1)[1] for r in older}
    kept = {k["tag"]: k["why"] for k in report["kept"]}
    assert set(kept) == {"latest", "buildcache", *(r.rsplit(":", 1)[1] for r in newer)}
    assert [head(stack, ref) for ref in older] == [404, 404]

    wipe_engine(stack.docker)
    for ref in [*newer, latest]:
        stack.docker.image.pull(ref, quiet=True)
    assert stack.docker.image.inspect(latest).id == stack.docker.image.inspect(newer[-1]).id
    assert head(stack, cache) == 200
    # The cache survived too: a fresh runner reuses it for the unchanged step.
    again = nightly(stack, repo, 4, "app")
    assert again.progress("app").step("RUN echo stable-step").cached


def test_storage_stays_bounded_over_nightly_cycles(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    bucket = unique
    client = new_bucket(stack, bucket)
    s3_settings = S3Settings(
        bucket=bucket, endpoint_url=stack.s3_endpoint, use_path_style=True, prefix="cache/"
    )
    repo = project(
        tmp_path,
        stack,
        registry=f"{stack.registry}/{unique}",
        cache='[cache]\nbackend = "registry"\n',
        images={"reg": ("stable.txt", "changing.txt"), "s3": ("stable.txt", "changing.txt")},
        per_image={"s3": s3_cache(bucket, table="image.cache")},
        noise=NOISE,
    )
    for night in range(10):
        run = nightly(stack, repo, night, "reg", "s3")
        assert [run.image(name)["status"] for name in ("reg", "s3")] == ["built", "built"]
    storage = Path(stack.env["PREBUILD_STACK_DATA"]) / "registry"
    before = _measure(storage, client, bucket)

    applied = gc_json(stack, repo, "--apply", "--keep", "1")
    assert [len(r["deleted"]) for r in applied["registry"]] == [9, 9]
    assert applied["s3"][0]["deleted"] == []  # every orphan is younger than the 48h grace
    # The next gc, two days later, collects the S3 orphans (the bucket's clock, not a sleep).
    newest = max(o.modified for o in objects(client, bucket).values())
    later = collect_garbage(
        s3_settings,
        grace_seconds=48 * 3600,
        apply=True,
        now=newest + timedelta(hours=49),
        client=make_client(s3_settings),
    )
    assert later.deleted and not later.failed
    collected = subprocess.run(
        [str(STACK), "registry-gc"], env=stack.run_env(), capture_output=True, text=True
    )
    assert collected.returncode == 0, collected.stderr
    assert "blobs marked" in collected.stderr  # distribution's own summary, passed through
    after = _measure(storage, client, bucket)

    ratio = after.ratio
    print(f"\nstorage before gc: {before}\nstorage after gc:  {after}")
    print(f"stored / live bytes after 10 nightly cycles + gc: {ratio:.3f}")
    assert ratio <= 1.3
    assert after.stored < before.stored and before.ratio > ratio  # gc reclaimed the garbage

    # Nothing live was lost: the kept images pull, both caches still serve a fresh runner.
    wipe_engine(stack.docker)
    for name in ("reg", "s3"):
        for entry in applied["registry"]:
            if entry["name"] == name:
                (key,) = [
                    k["tag"] for k in entry["kept"] if k["tag"] not in ("latest", "buildcache")
                ]
                stack.docker.image.pull(f"{entry['image']}:{key}", quiet=True)
                stack.docker.image.pull(f"{entry['image']}:latest", quiet=True)
    again = nightly(stack, repo, 10, "reg", "s3")
    for name in ("reg", "s3"):
        steps = again.progress(name)
        assert [steps.step(s).cached for s in STABLE_STEPS] == [True, True, True], name


class _Storage:
    """Bytes stored vs bytes the live tags / cache manifests reference, registry and S3."""

    def __init__(self, registry: tuple[int, int], s3: tuple[int, int]) -> None:
        self.registry_live, self.registry_total = registry
        self.s3_live, self.s3_total = s3

    @property
    def stored(self) -> int:
        return self.registry_total + self.s3_total

    @property
    def ratio(self) -> float:
        return self.stored / (self.registry_live + self.s3_live)

    def __str__(self) -> str:
        return (
            f"registry {self.registry_total} B stored / {self.registry_live} B live, "
            f"S3 {self.s3_total} B stored / {self.s3_live} B live, ratio {self.ratio:.3f}"
        )


def _measure(storage: Path, client: S3Client, bucket: str) -> _Storage:
    """The whole registry (every repository of this stack: blobs are shared across them)."""
    return _Storage(registry_live_and_total(storage), s3_live_and_total(client, bucket, "cache/"))
