"""Seed a base image into the local registry without any public registry or engine.

The image is Debian's busybox-static in a one-layer rootfs, written as a deterministic
tarball (fixed mtimes and owners) so its digest is the same on every machine, and pushed
with the OCI distribution API.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import subprocess
import tarfile
import urllib.error
import urllib.request

from devstack.procs import StackError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _add(
    tar: tarfile.TarFile, name: str, *, kind: bytes, mode: int, data: bytes = b"", link: str = ""
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    info.linkname, info.size = link, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def rootfs_tar(busybox: str = "/bin/busybox") -> bytes:
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    with open(busybox, "rb") as f:
        binary = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in (
            ("bin", 0o755),
            ("etc", 0o755),
            ("root", 0o700),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("var", 0o755),
        ):
            _add(tar, d, kind=tarfile.DIRTYPE, mode=mode)
        _add(tar, "bin/busybox", kind=tarfile.REGTYPE, mode=0o755, data=binary)
        for applet in sorted(set(applets) - {"busybox"}):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, link="busybox")
        _add(
            tar,
            "etc/passwd",
            kind=tarfile.REGTYPE,
            mode=0o644,
            data=b"root:x:0:0:root:/root:/bin/sh\n",
        )
        _add(tar, "etc/group", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:\n")
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _request(url: str, method: str, data: bytes | None = None, content_type: str | None = None):
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        return urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as error:
        raise StackError(f"{method} {url}: HTTP {error.code} {error.read()[:300]!r}") from error


def _push_blob(registry: str, repo: str, data: bytes) -> str:
    digest = _digest(data)
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"http://{registry}/v2/{repo}/blobs/{digest}", method="HEAD"),
            timeout=10,
        )
        return digest
    except urllib.error.HTTPError:
        pass
    with _request(f"http://{registry}/v2/{repo}/blobs/uploads/", "POST", b"") as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    _request(f"{location}{sep}digest={digest}", "PUT", data, "application/octet-stream").close()
    return digest


def push_base(registry: str, repo: str, tag: str) -> str:
    """Push the busybox base as REGISTRY/REPO:TAG; returns the manifest digest."""
    tar = rootfs_tar()
    layer = gzip.compress(tar, mtime=0)
    config = json.dumps(
        {
            "architecture": ARCH,
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
            "history": [
                {
                    "created": "1970-01-01T00:00:00Z",
                    "created_by": "prebuild local stack seed (busybox-static)",
                }
            ],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": _push_blob(registry, repo, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": OCI_LAYER,
                    "digest": _push_blob(registry, repo, layer),
                    "size": len(layer),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    _request(f"http://{registry}/v2/{repo}/manifests/{tag}", "PUT", manifest, OCI_MANIFEST).close()
    return _digest(manifest)
