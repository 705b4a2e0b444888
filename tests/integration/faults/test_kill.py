"""`kill -9` of prebuild mid-build, mid-s3-sync and mid-gc, then a rerun: every key tag
pulls and every cache imports. Each kill lands at a moment the test sees happen (a build step
started, a blob upload or a DELETE on the wire), never after a sleep.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from prebuild import deadline as deadlines
from prebuild.cache.s3 import sync
from prebuild.cache.s3.client import make_client
from tests.integration.cachecheck import check_s3_cache, s3_client
from tests.integration.faults.conftest import World, gc_project, seed_gc
from tests.integration.faults.test_matrix import settings


def wait_for_line(proc, text: str) -> list[str]:
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen[-30:])}")


def rebuilt(world: World, name: str, tmp: Path) -> dict:
    report = tmp / f"{name}.json"
    done = world.run("build", name, "--plain", "--report", str(report))
    assert done.code == 0, done.stderr
    (image,) = json.loads(report.read_text())["images"]
    return image


def pulls(world: World, ref: str) -> None:
    world.stack.docker.image.pull(world.direct(ref), quiet=True)


def registry_cache_complete(world: World, name: str) -> None:
    """The image's registry cache manifest exists and every blob it names is there."""
    import requests

    base = f"http://{world.upstream}/v2/{world.namespace}/{name}"
    manifest = requests.get(
        f"{base}/manifests/buildcache",
        timeout=10,
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert manifest.status_code == 200, manifest.text
    for layer in manifest.json()["layers"]:
        assert requests.head(f"{base}/blobs/{layer['digest']}", timeout=10).status_code == 200


def test_kill_9_mid_build_then_rerun(fault: World, tmp_path: Path) -> None:
    proc = fault.start("build", "slow", "--plain")
    wait_for_line(proc, "slow-step-started")  # the RUN step is running
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    image = rebuilt(fault, "slow", tmp_path)
    assert image["status"] in ("built", "skipped")
    pulls(fault, image["ref"])
    registry_cache_complete(fault, "slow")


def test_kill_9_mid_s3_sync_leaves_no_key_tag_then_rerun_completes(fault: World, tmp_path):
    fault.s3.set("delay", delay=0.3)  # every S3 request slowed: the sync takes a while
    proc = fault.start("build", "synced", "--plain")
    fault.s3.wait_for(r"^PUT .*/blobs/", timeout=120)  # a blob upload is on the wire
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    plan = fault.run("plan", "synced", "--json")
    (planned,) = plan.json()["images"]
    # the key tag is pushed after the cache export: killed mid-sync, there is none
    assert fault.manifest_status(planned["ref"]) == 404
    fault.s3.set("pass")
    image = rebuilt(fault, "synced", tmp_path)
    assert image["status"] == "built" and image["ref"] == planned["ref"]
    pulls(fault, image["ref"])
    check_s3_cache(s3_client(fault.stack), fault.bucket, "synced/", "synced")
    with deadlines.scope(deadlines.Deadline(30)):
        s3 = settings(fault, "synced/")
        assert sync.import_from_s3(s3, "synced", tmp_path / "in", client=make_client(s3))


def test_kill_9_mid_gc_then_rerun(fault: World, tmp_path: Path) -> None:
    tags = seed_gc(fault, "gc-killed", count=6)
    project = gc_project(fault, tmp_path, "gc-killed")
    fault.registry.set("delay", delay=0.3)
    proc = fault.start("gc", "--apply", "--keep", "1", cwd=project)
    fault.registry.wait_for(r"^DELETE ", timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fault.registry.set("pass")
    done = fault.run("gc", "--apply", "--keep", "1", cwd=project)
    assert done.code == 0, done.stderr
    assert fault.tags("gc-killed") == [tags[-1]]
    assert (
        fault.manifest_status(f"{fault.registry.address}/{fault.namespace}/gc-killed:{tags[-1]}")
        == 200
    )


def _stopped_within(proc, seconds: float) -> float:
    import time

    started = time.monotonic()
    proc.wait(timeout=30)
    return time.monotonic() - started


def test_ctrl_c_while_the_registry_hangs_stops_within_2s(fault: World, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    fault.registry.set("stall")
    proc = fault.start("build", "app", "--plain", "--report", str(report))
    fault.registry.wait_for(r"^(HEAD|GET) ", timeout=60)  # prebuild is waiting on the registry
    proc.send_signal(signal.SIGINT)
    assert _stopped_within(proc, 2) < 2
    assert proc.returncode == 128 + signal.SIGINT
    doc = json.loads(report.read_text())
    assert doc["interrupted"] == "SIGINT"
    assert [i["status"] for i in doc["images"]] == ["interrupted"]


def test_sigterm_mid_build_kills_the_build_and_pushes_nothing(fault: World, tmp_path) -> None:
    report = tmp_path / "r.json"
    write_slow = fault.repo / "slow" / "app.txt"
    write_slow.write_text(write_slow.read_text() + "sigterm\n")  # a new key: not built yet
    (fault.repo / "slow" / "Dockerfile").write_text(
        (fault.repo / "slow" / "Dockerfile").read_text().replace("sleep 4", "sleep 30")
    )
    proc = fault.start("build", "slow", "--plain", "--report", str(report))
    wait_for_line(proc, "slow-step-started")
    proc.send_signal(signal.SIGTERM)
    assert _stopped_within(proc, 2) < 2
    assert proc.returncode == 128 + signal.SIGTERM
    doc = json.loads(report.read_text())
    (image,) = doc["images"]
    assert (doc["interrupted"], image["status"]) == ("SIGTERM", "interrupted")
    assert fault.manifest_status(image["ref"]) == 404  # the killed build pushed nothing
    assert fault.run("plan", "slow", "--json").code == 0  # the engine and registry are fine
