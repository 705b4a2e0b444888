"""The seeded base is one multi-platform index whose digest depends only on the packages.

Machines differ in time, umask, owners and zlib builds; none of that may reach the digest,
or keys computed against the stack's base would differ from machine to machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from devstack import seed


def fake_deb(root: Path, arch: str, marker: str) -> Path:
    """A busybox-static .deb whose 'binary' is a script listing two applets."""
    tree = root / f"tree-{arch}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: busybox-static\nVersion: 1\nArchitecture: {arch}\n"
        "Maintainer: t <t@example.org>\nDescription: test\n"
    )
    binary = tree / "usr/bin/busybox"
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\n# {marker}\necho busybox sh ls\n")
    binary.chmod(0o755)
    deb = root / f"busybox-static_1_{arch}.deb"
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def debs(root: Path) -> dict[str, Path]:
    return {arch: fake_deb(root, arch, f"built for {arch}") for arch in seed.ARCHES}


def test_the_index_has_one_child_per_platform_and_uncompressed_layers(tmp_path: Path) -> None:
    made = seed.build_seed(debs(tmp_path))
    index = json.loads(made.index)
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [{"architecture": a, "os": "linux"} for a in ("amd64", "arm64", "s390x")]
    for entry in index["manifests"]:
        manifest = json.loads(made.manifests[entry["digest"]])
        (layer,) = manifest["layers"]
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
        config = json.loads(made.blobs[manifest["config"]["digest"]])
        assert config["architecture"] == entry["platform"]["architecture"]
        assert config["rootfs"]["diff_ids"] == [layer["digest"]]


def test_the_digest_ignores_build_time_and_file_dates(tmp_path: Path) -> None:
    first = seed.build_seed(debs(tmp_path / "a")).digest
    again = debs(tmp_path / "b")  # other paths, other mtimes inside the packages
    for deb in again.values():
        os.utime(deb, (1_000_000, 1_000_000))
    assert seed.build_seed(again).digest == first


def test_a_different_package_gives_a_different_digest(tmp_path: Path) -> None:
    first = seed.build_seed(debs(tmp_path / "a")).digest
    changed = debs(tmp_path / "b")
    changed["s390x"] = fake_deb(tmp_path / "c", "s390x", "a newer upload")
    assert seed.build_seed(changed).digest != first
