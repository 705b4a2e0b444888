"""Seed the base image into the local registry without any public registry or engine.

The base is ONE multi-platform OCI index (linux/amd64, linux/arm64, linux/s390x), each child
Debian's busybox-static for that architecture in a one-layer rootfs, pushed with the OCI
distribution API. Everything is deterministic, so the index digest is the same on every
machine: fixed mtimes, owners and order in the tar, sorted JSON, and uncompressed layers
(gzip output depends on the zlib build; a plain tar does not).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import platform
import stat
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devstack import packages
from devstack.procs import StackError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"  # uncompressed: see the module doc
ARCHES = ("amd64", "arm64", "s390x")  # Debian architecture == OCI architecture for these
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
PACKAGE = "busybox-static"


def _add(
    tar: tarfile.TarFile, name: str, *, kind: bytes, mode: int, data: bytes = b"", link: str = ""
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    info.linkname, info.size = link, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def rootfs_tar(binary: bytes, applets: list[str]) -> bytes:
    """/bin/busybox, one symlink per applet, a root user: what a RUN step needs."""
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


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def ensure_debs(cache: Path, say) -> dict[str, Path]:
    """busybox-static's .deb for every ARCHES (downloaded once into the shared cache)."""
    dest = cache / "seed-debs"
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".lock", "w") as lock:  # stacks of other checkouts share this cache
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = {arch: sorted(dest.glob(f"{PACKAGE}_*_{arch}.deb")) for arch in ARCHES}
        missing = [arch for arch, debs in found.items() if not debs]
        if missing:
            say(f"downloading {PACKAGE} for {', '.join(missing)}")
            packages.apt_download(
                [f"{PACKAGE}:{arch}" for arch in missing],
                dest,
                cache / "apt-seed",
                architectures=ARCHES,
            )
            found = {arch: sorted(dest.glob(f"{PACKAGE}_*_{arch}.deb")) for arch in ARCHES}
    for arch, debs in found.items():
        if not debs:
            raise StackError(f"apt-get download gave no {PACKAGE} for {arch}")
    return {arch: debs[-1] for arch, debs in found.items()}


def busybox_binary(deb: Path) -> bytes:
    """The busybox binary out of a .deb, read from its data tar (nothing unpacked on disk)."""
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
    if proc.returncode != 0:
        raise StackError(f"dpkg-deb --fsys-tarfile {deb}: {proc.stderr.decode()[-400:]}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for name in ("./usr/bin/busybox", "./bin/busybox"):  # merged /usr (trixie) or not
            try:
                member = tar.extractfile(name)
            except KeyError:
                continue
            if member is not None:
                return member.read()
    raise StackError(f"{deb.name} has no busybox binary")


def applets(binary: bytes) -> list[str]:
    """The applet names, asked from the host's own busybox (same version for every arch)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "busybox"
        path.write_bytes(binary)
        path.chmod(stat.S_IRWXU)
        out = subprocess.run([str(path), "--list"], capture_output=True, text=True, check=True)
    return out.stdout.split()


@dataclass(frozen=True)
class Seed:
    """The index and every blob/manifest it needs, ready to push (digest -> bytes)."""

    index: bytes
    manifests: dict[str, bytes]
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        return _digest(self.index)


def build_seed(debs: dict[str, Path]) -> Seed:
    if HOST_ARCH not in debs:
        raise StackError(f"the seed needs a host of one of {', '.join(ARCHES)}, not {HOST_ARCH}")
    binaries = {arch: busybox_binary(deb) for arch, deb in debs.items()}
    names = applets(binaries[HOST_ARCH])
    manifests: dict[str, bytes] = {}
    blobs: dict[str, bytes] = {}
    entries = []
    for arch in ARCHES:
        layer = rootfs_tar(binaries[arch], names)
        config = _json(
            {
                "architecture": arch,
                "os": "linux",
                "created": "1970-01-01T00:00:00Z",
                "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
                "history": [
                    {
                        "created": "1970-01-01T00:00:00Z",
                        "created_by": f"prebuild local stack seed ({debs[arch].name})",
                    }
                ],
            }
        )
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
            }
        )
        blobs[_digest(config)], blobs[_digest(layer)] = config, layer
        manifests[_digest(manifest)] = manifest
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": _digest(manifest),
                "size": len(manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    return Seed(index=index, manifests=manifests, blobs=blobs)


def _request(url: str, method: str, data: bytes | None = None, content_type: str | None = None):
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        return urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as error:
        raise StackError(f"{method} {url}: HTTP {error.code} {error.read()[:300]!r}") from error


def _push_blob(registry: str, repo: str, digest: str, data: bytes) -> None:
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"http://{registry}/v2/{repo}/blobs/{digest}", method="HEAD"),
            timeout=10,
        )
        return
    except urllib.error.HTTPError:
        pass
    with _request(f"http://{registry}/v2/{repo}/blobs/uploads/", "POST", b"") as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    _request(f"{location}{sep}digest={digest}", "PUT", data, "application/octet-stream").close()


def tag_digest(registry: str, repo: str, tag: str) -> str | None:
    """What REPO:TAG points at now (None: absent or the registry does not answer)."""
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD")
    req.add_header("Accept", f"{OCI_INDEX}, {OCI_MANIFEST}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.headers.get("Docker-Content-Digest")
    except OSError:
        return None


def push_seed(registry: str, repo: str, tag: str, seed: Seed) -> str:
    """Push the children by digest, then the index as REPO:TAG; returns the index digest."""
    for digest, data in seed.blobs.items():
        _push_blob(registry, repo, digest, data)
    for digest, manifest in seed.manifests.items():
        url = f"http://{registry}/v2/{repo}/manifests/{digest}"
        _request(url, "PUT", manifest, OCI_MANIFEST).close()
    url = f"http://{registry}/v2/{repo}/manifests/{tag}"
    _request(url, "PUT", seed.index, OCI_INDEX).close()
    return seed.digest


def _complete(registry: str, repo: str, seed: Seed) -> bool:
    """Every child manifest is still there (a `garbage-collect --delete-untagged` on
    distribution 2.8 deletes them and leaves the index: distribution#3178)."""
    return all(tag_digest(registry, repo, digest) == digest for digest in seed.manifests)


def ensure_base(registry: str, repo: str, tag: str, cache: Path, say) -> str:
    """REPO:TAG is the seed index (pushed when absent, different, e.g. an older seed, or
    missing a child)."""
    seed = build_seed(ensure_debs(cache, say))
    if tag_digest(registry, repo, tag) != seed.digest or not _complete(registry, repo, seed):
        push_seed(registry, repo, tag, seed)
        say(f"seeded base image {registry}/{repo}:{tag}@{seed.digest} ({', '.join(ARCHES)})")
    return seed.digest
