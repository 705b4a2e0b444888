"""The local stack is real: BuildKit exports/imports registry cache, the S3 registry stores
blobs in the bucket, and down/up leaves nothing behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import requests

from prebuild.engine import buildx
from prebuild.engine.buildx import BuildRequest
from tests.integration.conftest import STACK, Stack, wipe_engine, write


def _image_context(tmp_path: Path, base: str) -> Path:
    write(
        tmp_path / "Dockerfile",
        f"FROM {base}\nCOPY app.txt /app/app.txt\nRUN cat /app/app.txt | tee /app/copy\n"
        "RUN date +%s%N | tee /app/stamp\n",
    )
    write(tmp_path / "app.txt", "hello\n")
    return tmp_path


def test_registry_cache_round_trip_makes_every_step_cached(
    stack: Stack, clean_engine, tmp_path, unique
) -> None:
    context = _image_context(tmp_path, stack.base_image)
    cache_ref = f"{stack.registry}/{unique}:buildcache"
    request = BuildRequest(
        context=context,
        dockerfile=context / "Dockerfile",
        tags=(f"{stack.registry}/{unique}:v1",),
        cache_to={
            "type": "registry",
            "ref": cache_ref,
            "mode": "max",
            "image-manifest": "true",
            "oci-mediatypes": "true",
        },
        push=True,
    )
    first = buildx.build(request)
    assert first.progress.total == 3 and first.progress.cached == 0

    wipe_engine(stack.docker)
    again = BuildRequest(
        context=context,
        dockerfile=context / "Dockerfile",
        tags=(f"{stack.registry}/{unique}:v2",),
        cache_from=({"type": "registry", "ref": cache_ref},),
        push=True,
    )
    second = buildx.build(again)
    assert second.progress.total == 3
    assert [s.cached for s in second.progress.build_steps] == [True, True, True]
    # the strongest evidence: `date` ran once, so identical layers mean nothing re-ran
    assert _layers(stack.registry, unique, "v2") == _layers(stack.registry, unique, "v1")


MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _manifest(registry: str, repo: str, reference: str) -> dict:
    """The image manifest (following an index to its first manifest)."""
    url = f"http://{registry}/v2/{repo}/manifests/{reference}"
    manifest = requests.get(url, headers={"Accept": MANIFEST_TYPES}, timeout=10).json()
    if "manifests" in manifest:
        return _manifest(registry, repo, manifest["manifests"][0]["digest"])
    return manifest


def _layers(registry: str, repo: str, tag: str) -> list[str]:
    return [layer["digest"] for layer in _manifest(registry, repo, tag)["layers"]]


def test_s3_backed_registry_stores_pushed_blobs_in_the_bucket(
    stack: Stack, tmp_path, unique
) -> None:
    context = _image_context(tmp_path, stack.base_image)
    ref = f"{stack.s3_registry}/{unique}:v1"
    buildx.build(
        BuildRequest(context=context, dockerfile=context / "Dockerfile", tags=(ref,), push=True)
    )

    wipe_engine(stack.docker)
    stack.docker.image.pull(ref, quiet=True)
    layers = stack.docker.image.inspect(ref).root_fs.layers
    assert len(layers) == 4  # base + COPY + 2 RUN

    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint)
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="prebuild-registry")
        for obj in page.get("Contents", [])
    ]
    assert any(f"/repositories/{unique}/_manifests/tags/v1/" in k for k in keys)
    manifest = _manifest(stack.s3_registry, unique, "v1")
    for layer in manifest["layers"]:
        hexdigest = layer["digest"].split(":")[1]
        assert any(k.endswith(f"/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data") for k in keys)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _stack_processes(stack: Stack) -> set[int]:
    """Live processes of THIS stack instance (other instances may share the machine): those
    its pidfiles name, those whose command line names its state or run directory, and their
    descendants (containerd shims)."""
    state = stack.env["PREBUILD_STACK_DATA"]
    run_dir = str(Path(stack.env["DOCKER_HOST"].removeprefix("unix://")).parent)
    found = set()
    for pidfile in Path(state, "pids").glob("*.pid"):
        pid = int(pidfile.read_text().split()[0])
        if _alive(pid):
            found.add(pid)
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
        except (OSError, ValueError):
            continue
        if (state in cmdline or run_dir in cmdline) and _alive(int(entry.name)):
            found.add(int(entry.name))
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found and _alive(pid)}
        grew = not children <= found
        found |= children
    return found


def test_down_then_up_leaves_no_stray_processes(stack: Stack) -> None:
    before = _stack_processes(stack)
    assert len(before) >= 5  # dockerd, containerd, 2 registries, moto
    down = subprocess.run([str(STACK), "down"], capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert {pid for pid in before if _alive(pid)} == set()
    assert _stack_processes(stack) == set()
    status = subprocess.run([str(STACK), "status"], capture_output=True, text=True)
    assert status.returncode == 3 and "running" not in status.stdout

    up = subprocess.run([str(STACK), "up"], capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    assert stack.docker.version().server is not None
    assert requests.get(f"http://{stack.registry}/v2/", timeout=5).status_code == 200
    assert len(_stack_processes(stack)) >= 5  # dockerd, containerd, 2 registries, moto
