"""Helpers for the cache and gc integration tests: a tiny project, the CLI, and independent
checks of what BuildKit's s3 layout and the registry's disk actually hold.

The checks deliberately do not reuse prebuild's own parsers: they read the bucket and the
registry's storage directory directly, so a bug shared by writer and reader cannot hide.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from prebuild.engine import progress
from tests.integration.conftest import Stack, write

S3Client = Any
_DISPLAY_PREFIX = re.compile(r"^\d\d:\d\d:\d\d \[(?P<name>[^\]]+)\] ")
_BLOB_KEY = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class Run:
    """One `prebuild ...` subprocess."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None = None

    def image(self, name: str) -> dict[str, Any]:
        assert self.report is not None, self.stderr[-3000:]
        return next(i for i in self.report["images"] if i["name"] == name)

    def progress(self, name: str) -> progress.Progress:
        """BuildKit's plain progress for image `name`, from the display's prefixed lines."""
        lines = []
        for line in self.stderr.splitlines():
            match = _DISPLAY_PREFIX.match(line)
            if match and match["name"] == name:
                lines.append(line[match.end() :])
        return progress.parse(lines)


def prebuild(stack: Stack, repo: Path, *args: str, report: bool = False) -> Run:
    """Run the real CLI in `repo` with the stack's environment (never in-process)."""
    argv = [sys.executable, "-m", "prebuild", *args]
    report_file = repo / ".report.json"
    if report:
        report_file.unlink(missing_ok=True)
        argv += ["--plain", "--report", str(report_file)]
    proc = subprocess.run(argv, cwd=repo, env=stack.run_env(), capture_output=True, text=True)
    loaded = json.loads(report_file.read_text()) if report and report_file.exists() else None
    return Run(proc.returncode, proc.stdout, proc.stderr, loaded)


def build(stack: Stack, repo: Path, *names: str) -> Run:
    """`prebuild build` that must succeed; returns the run with its JSON report."""
    run = prebuild(stack, repo, "build", *names, report=True)
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def gc_json(stack: Stack, repo: Path, *args: str) -> dict[str, Any]:
    run = prebuild(stack, repo, "gc", "--json", *args)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def s3_client(stack: Stack) -> S3Client:
    return boto3.session.Session().client(
        "s3", endpoint_url=stack.s3_endpoint, region_name=stack.env["AWS_DEFAULT_REGION"]
    )


def new_bucket(stack: Stack, name: str) -> S3Client:
    client = s3_client(stack)
    client.create_bucket(Bucket=name)
    return client


def s3_cache(bucket: str, *, table: str = "cache", prefix: str = "cache/") -> str:
    """TOML for an s3-sync cache in `bucket` on the stack's moto (endpoint filled by project)."""
    lines = [
        f"[{table}]",
        'backend = "s3-sync"',
        f"[{table}.s3]",
        f'bucket = "{bucket}"',
        'endpoint_url = "{endpoint}"',
        "use_path_style = true",
        f'prefix = "{prefix}"',
    ]
    return "\n".join(lines) + "\n"


def dockerfile(base: str, *inputs: str, noise: int = 0) -> str:
    """FROM base, one RUN that depends on nothing, then per input a COPY and a RUN that prints
    it: each step's cache hit or miss is visible, and every layer has distinct content.
    `noise` bytes of random data in a last layer make each rebuild leave real garbage."""
    steps = [f"FROM {base}", "RUN echo stable-step | tee /stable"]
    for name in inputs:
        steps += [f"COPY {name} /in/{name}", f"RUN cat /in/{name} | tee /out-{name}"]
    if noise:
        steps.append(f"RUN head -c {noise} /dev/urandom > /noise")
    return "\n".join(steps) + "\n"


def project(
    repo: Path,
    stack: Stack,
    *,
    registry: str,
    cache: str,
    images: dict[str, tuple[str, ...]],
    per_image: dict[str, str] | None = None,
    noise: int = 0,
) -> Path:
    """prebuild.toml + one Dockerfile and its input files per image (input text "v0").

    `cache` is the project's [cache] tables, `per_image[name]` TOML appended to that image's
    table (e.g. its own [image.cache]); "{endpoint}" in either is the stack's S3 endpoint.
    """
    toml = [f'registry = "{registry}"', "jobs = 2", "", cache]
    for name, inputs in images.items():
        context = repo / name
        write(context / "Dockerfile", dockerfile(stack.base_image, *inputs, noise=noise))
        for item in inputs:
            write(context / item, f"{name} {item} v0\n")
        toml += ["[[image]]", f'name = "{name}"', f'context = "{name}"']
        toml += [(per_image or {}).get(name, ""), ""]
    text = "\n".join(toml).replace("{endpoint}", stack.s3_endpoint)
    write(repo / "prebuild.toml", text)
    return repo


# -- the bucket, read directly ------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    size: int
    modified: datetime


def objects(client: S3Client, bucket: str) -> dict[str, Obj]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = Obj(obj["Size"], obj["LastModified"])
    return found


def check_s3_cache(client: S3Client, bucket: str, prefix: str, name: str) -> dict[str, int]:
    """Validate the manifest `prefix/manifests/name` against the blobs, as BuildKit's s3
    importer needs them: every layer blob at `prefix/blobs/sha256:<hex>`, with the size the
    manifest says, content hashing to its digest, and (gzip) uncompressed content hashing to
    its diffID; record links in range. Returns {blob key: size} of the referenced blobs."""
    body = client.get_object(Bucket=bucket, Key=f"{prefix}manifests/{name}")["Body"].read()
    manifest = json.loads(body)
    layers = manifest["layers"]
    assert layers, "the cache manifest names no layer"
    referenced: dict[str, int] = {}
    for i, layer in enumerate(layers):
        ann = layer["annotations"]
        assert set(ann) <= {"mediaType", "diffID", "size", "createdAt"}, ann
        assert layer.get("parent", 0) in range(-1, len(layers)), layer
        key = f"{prefix}blobs/{layer['blob']}"
        if key in referenced:
            assert referenced[key] == ann["size"], f"layer {i}: two sizes for {key}"
            continue
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(data) == ann["size"], f"{key}: {len(data)} bytes, manifest says {ann['size']}"
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["blob"], key
        if ann["mediaType"].endswith("gzip"):
            diff_id = "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
            assert diff_id == ann["diffID"], f"{key}: uncompressed content is not its diffID"
        referenced[key] = len(data)
    for record in manifest["records"]:
        for result in record.get("layers") or []:
            assert 0 <= result["layer"] < len(layers)
        for inputs in record.get("inputs") or []:
            for link in inputs:
                assert 0 <= link["link"] < len(manifest["records"])
    return referenced


def check_bucket_layout(keys: list[str], prefix: str) -> None:
    """Only BuildKit's s3 layout: `prefix/blobs/sha256:<hex>` and `prefix/manifests/<name>`."""
    for key in keys:
        assert key.startswith(prefix), key
        rest = key[len(prefix) :]
        kind, _, tail = rest.partition("/")
        assert kind in ("blobs", "manifests") and tail and "/" not in tail, key
        if kind == "blobs":
            assert _BLOB_KEY.fullmatch(tail), key


def s3_live_and_total(client: S3Client, bucket: str, prefix: str) -> tuple[int, int]:
    """(bytes every manifest and the blobs they name take, bytes the bucket holds)."""
    everything = objects(client, bucket)
    live = 0
    referenced: dict[str, int] = {}
    for key, obj in everything.items():
        if key.startswith(f"{prefix}manifests/"):
            live += obj.size
            referenced |= check_s3_cache(client, bucket, prefix, key.rsplit("/", 1)[1])
    live += sum(referenced.values())
    return live, sum(obj.size for obj in everything.values())


# -- the registry's filesystem storage, read directly --------------------------------------------


def registry_live_and_total(storage: Path) -> tuple[int, int]:
    """(bytes of the blobs tagged manifests need, bytes of all blob files) in a distribution
    filesystem storage: what a tag keeps alive vs what the disk holds."""
    v2 = storage / "docker" / "registry" / "v2"
    blobs = v2 / "blobs" / "sha256"

    def path(digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        return blobs / hexpart[:2] / hexpart / "data"

    live: set[str] = set()

    def mark(digest: str) -> None:
        if digest in live:
            return
        live.add(digest)
        if not path(digest).exists():
            # a child of a multi-platform index that distribution 2.8's --delete-untagged
            # removed (distribution#3178): pushed outside prebuild (provenance index), not live
            return
        doc = json.loads(path(digest).read_bytes())
        for desc in [doc.get("config"), *(doc.get("layers") or [])]:
            if isinstance(desc, dict):
                live.add(desc["digest"])
        for child in doc.get("manifests") or []:
            mark(child["digest"])

    for link in (v2 / "repositories").glob("**/_manifests/tags/*/current/link"):
        mark(link.read_text().strip())
    total = sum(p.stat().st_size for p in blobs.glob("*/*/data"))
    return sum(path(d).stat().st_size for d in live if path(d).exists()), total
