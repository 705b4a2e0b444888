"""The world the fault matrix runs in: one project built once through a fault proxy.

The registry proxy stands between prebuild AND the engine and the stack's registry (the
image's base is named through it too, so base resolution, HEADs, pulls and pushes all cross
it); the S3 proxy stands in front of moto. Each test sets the fault it needs and the proxies
are reset to `pass` after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.integration.cachecheck import new_bucket
from tests.integration.conftest import Stack, write
from tests.integration.faults.proxy import FaultProxy, fault_proxy

PREBUILD = Path(sys.executable).with_name("prebuild")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKERFILE = "FROM {base}\nRUN echo fault-matrix > /one\nCOPY app.txt /app.txt\n"
# An image whose build takes a while (so a kill -9 can land in the middle of it).
SLOW = "FROM {base}\nRUN echo slow-step-started && sleep 4 && echo {nonce} > /slow\n"


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict:
        return json.loads(self.stdout)


@dataclass
class World:
    stack: Stack
    repo: Path
    registry: FaultProxy  # in front of the stack's registry
    s3: FaultProxy  # in front of moto
    namespace: str  # REGISTRY/NAMESPACE/app...
    bucket: str
    key_ref: str  # app's key tag, through the proxy

    @property
    def upstream(self) -> str:
        return self.stack.registry

    def env(self, **extra: str) -> dict[str, str]:
        env = self.stack.run_env()
        for name in list(env):
            if name.startswith(("PREBUILD_", "GITHUB_", "CI_", "GITLAB_")) and name not in (
                self.stack.env
            ):
                del env[name]
        return {**env, **extra}

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> Done:
        started = time.monotonic()
        proc = subprocess.run(
            [str(PREBUILD), *args], cwd=cwd or self.repo, env=self.env(),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return Done(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def start(self, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(PREBUILD), *args], cwd=cwd or self.repo, env=self.env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def direct(self, ref: str) -> str:
        """The same ref on the real registry, bypassing the proxy."""
        return ref.replace(self.registry.address, self.upstream, 1)

    def tags(self, repository: str) -> list[str]:
        """Tags of NAMESPACE-relative `repository`, asked of the registry directly."""
        url = f"http://{self.upstream}/v2/{self.namespace}/{repository}/tags/list"
        resp = requests.get(url, timeout=10)
        return sorted(resp.json().get("tags") or []) if resp.status_code == 200 else []

    def manifest_status(self, ref: str) -> int:
        host, _, rest = self.direct(ref).partition("/")
        name, _, tag = rest.rpartition(":")
        url = f"http://{host}/v2/{name}/manifests/{tag}"
        return requests.head(url, headers={"Accept": ACCEPT}, timeout=10).status_code


ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def config_toml(registry: str, bucket: str, s3_endpoint: str, images: list[str]) -> str:
    lines = [f'registry = "{registry}"', ""]
    for name in images:
        lines += ["[[image]]", f'name = "{name}"', f'context = "{name}"']
        if name.startswith("synced"):
            lines += [
                "[image.cache]", 'backend = "s3-sync"', "[image.cache.s3]",
                f'bucket = "{bucket}"', f'endpoint_url = "{s3_endpoint}"',
                "use_path_style = true", f'prefix = "{name}/"',
            ]  # fmt: skip
        lines.append("")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def world(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    namespace = f"f{uuid.uuid4().hex[:8]}"
    bucket = namespace
    new_bucket(stack, bucket)
    s3_upstream = urlsplit(stack.s3_endpoint).netloc
    with fault_proxy(stack.registry) as registry, fault_proxy(s3_upstream) as s3:
        repo = tmp_path_factory.mktemp("faults") / "repo"
        base = f"{registry.address}/seed/busybox:stable"  # the engine's base pull crosses it too
        nonce = uuid.uuid4().hex
        for name in ("app", "slow", "synced"):
            text = SLOW if name == "slow" else DOCKERFILE
            write(repo / name / "Dockerfile", text.format(base=base, nonce=nonce))
            write(repo / name / "app.txt", f"{name} {nonce}\n")
        write(repo / "old" / "Dockerfile", f"FROM {base}\n")  # gc's image: never built
        toml = config_toml(f"{registry.address}/{namespace}", bucket, f"http://{s3.address}",
                           ["app", "slow", "synced", "old"])  # fmt: skip
        write(repo / "prebuild.toml", toml)
        w = World(stack, repo, registry, s3, namespace, bucket, key_ref="")
        built = w.run("build", "app", "--plain", "--report", "built.json")
        assert built.code == 0, built.stderr
        (image,) = json.loads((repo / "built.json").read_text())["images"]
        w.key_ref = image["ref"]
        yield w


@pytest.fixture
def fault(world: World) -> Iterator[World]:
    """The world with both proxies back to `pass` after the test."""
    yield world
    world.registry.set("pass")
    world.s3.set("pass")


def push_synthetic(registry: str, repository: str, tag: str, created: str) -> str:
    """A tiny image (a config blob, no layers) under `tag`, pushed straight to the registry:
    gc's material, each with its own digest and build time. Returns the manifest digest."""
    import hashlib

    config = json.dumps(
        {"created": created, "architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()  # fmt: skip
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    base = f"http://{registry}/v2/{repository}"
    start = requests.post(f"{base}/blobs/uploads/", timeout=10)
    location = urljoin(f"http://{registry}", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    done = requests.put(f"{location}{sep}digest={digest}", data=config, timeout=10,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert done.status_code == 201, done.text
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": digest, "size": len(config)}}
    ).encode()  # fmt: skip
    put = requests.put(f"{base}/manifests/{tag}", data=manifest, timeout=10,
                       headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    assert put.status_code == 201, put.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def key_tags(count: int) -> list[str]:
    return [uuid.uuid4().hex[:24] for _ in range(count)]


def gc_project(world: World, tmp: Path, name: str) -> Path:
    """A project of one image `name` (in the world's namespace) for gc, via the proxy."""
    write(tmp / name / "Dockerfile", "FROM scratch\n")
    registry = f"{world.registry.address}/{world.namespace}"
    write(tmp / "prebuild.toml", f'registry = "{registry}"\n\n[[image]]\nname = "{name}"\n'
                                 f'context = "{name}"\n')  # fmt: skip
    return tmp


def seed_gc(world: World, name: str, count: int = 3) -> list[str]:
    """`count` key tags of distinct images, oldest first, straight into the registry."""
    tags = key_tags(count)
    for day, tag in enumerate(tags, start=1):
        push_synthetic(world.upstream, f"{world.namespace}/{name}", tag,
                       f"2024-01-{day:02d}T00:00:00Z")  # fmt: skip
    return tags
