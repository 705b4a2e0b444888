"""Generated repositories: a prebuild.toml, Dockerfiles and context files per scenario.

Everything is written below bench/out/work (git-ignored) and is deterministic unless a
scenario asks for fresh content, so an image whose inputs did not change keeps its key from
one run to the next and its (expensive) setup build is skipped.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import OUT

WORK = OUT / "work"
MB = 1_000_000


def workdir(name: str, *, fresh: bool = False) -> Path:
    path = WORK / name
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write files relative to `root`, skipping identical content (keeps mtimes stable)."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        if path.exists() and path.read_bytes() == data:
            continue
        path.write_bytes(data)


@dataclass(frozen=True)
class Image:
    name: str
    context: str


def project_toml(
    registry: str,
    base_image: str,
    images: Sequence[Image],
    *,
    cache: str = 'backend = "registry"',
    gc: str = "",
    tags: str = '["latest"]',
) -> str:
    """A prebuild.toml for `images`, built FROM the stack's seeded busybox."""
    lines = [
        f'registry = "{registry}"',
        "",
        "[cache]",
        cache,
        "",
        "[defaults]",
        f'build_args = {{ BASE_IMAGE = "{base_image}" }}',
        f"tags = {tags}",
        "",
    ]
    if gc:
        lines += ["[gc]", gc, ""]
    for image in images:
        lines += ["[[image]]", f'name = "{image.name}"', f'context = "{image.context}"', ""]
    return "\n".join(lines)


FROM_BASE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"


def big_dockerfile(layers: int = 5, layer_mb: int = 110) -> str:
    """`layers` RUN steps each writing `layer_mb` MB of incompressible data (busybox head)."""
    steps = [
        f"RUN head -c {layer_mb * MB} /dev/urandom > /data-{i}.bin" for i in range(1, layers + 1)
    ]
    return FROM_BASE + "COPY marker.txt /marker.txt\n" + "\n".join(steps) + "\n"


def small_dockerfile() -> str:
    return FROM_BASE + "COPY files/ /opt/app/\n"


def storage_dockerfile(stable_mb: float, changing_mb: float) -> str:
    """A stable-ish toolchain layer, then an app layer that changes with every input change."""
    return (
        FROM_BASE
        + "COPY toolchain.txt /toolchain.txt\n"
        + f"RUN head -c {int(stable_mb * MB)} /dev/urandom > /toolchain.bin\n"
        + "COPY src/ /src/\n"
        + f"RUN head -c {int(changing_mb * MB)} /dev/urandom > /app.bin && cat /src/* >> /app.bin\n"
    )


def waiting_dockerfile(seconds: int = 3) -> str:
    """RUN steps that mostly wait, like downloads or test suites blocked on I/O."""
    return (
        FROM_BASE
        + "COPY nonce.txt /nonce.txt\n"
        + f"RUN sleep {seconds} && head -c 200000 /dev/urandom > /w.bin\n"
    )


def cpu_dockerfile(data_mb: int, rounds: int) -> str:
    """RUN steps that keep one core busy: busybox sha256sum over generated data, in a loop."""
    return (
        FROM_BASE
        + "COPY nonce.txt /nonce.txt\n"
        + f"RUN head -c {data_mb * MB} /dev/zero > /d.bin && i=0 && "
        + f"while [ $i -lt {rounds} ]; do sha256sum /d.bin > /sum.txt; i=$((i+1)); done && "
        + "rm /d.bin\n"
    )


def tree_of_files(root: Path, count: int, total_mb: int, *, seed: int = 4) -> list[Path]:
    """`count` files of random content under `root` (nested dirs, mixed sizes) totalling
    about `total_mb` MB: mostly small sources plus a few big blobs, like a real checkout."""
    rng = random.Random(seed)
    big = max(1, count // 250)  # 20 big files for 5000
    big_size = total_mb * MB * 3 // 10 // big  # 30% of the bytes in big files
    small_budget = total_mb * MB - big * big_size
    small = count - big
    mean = small_budget // small
    paths = []
    for index in range(count):
        directory = root / f"pkg{index % 50:02d}" / f"mod{(index // 50) % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"file{index:05d}.dat"
        size = big_size if index < big else rng.randint(mean // 4, mean * 7 // 4)
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def chain_name(chain: int, level: int) -> str:
    return f"c{chain:02d}-l{level}"


def chains(
    registry: str, base_image: str, *, count: int, depth: int, files_per_image: int
) -> dict[str, str]:
    """`count` chains of `depth` images: level 0 builds FROM the base, level N FROM level N-1
    of its chain (written as the sibling's bare name, which prebuild pins to its key tag), each
    copying its own `files_per_image` small files. The files of a scale scenario's repo."""
    decls = [
        Image(chain_name(c, level), f"images/{chain_name(c, level)}")
        for c in range(count)
        for level in range(depth)
    ]
    files = {"prebuild.toml": project_toml(registry, base_image, decls)}
    for c in range(count):
        for level in range(depth):
            name = chain_name(c, level)
            parent = FROM_BASE if level == 0 else f"FROM {chain_name(c, level - 1)}\n"
            files[f"images/{name}/Dockerfile"] = parent + f"COPY files/ /opt/{name}/\n"
            for f in range(files_per_image):
                files[f"images/{name}/files/f{f}.txt"] = f"{name} file {f}\n"
    return files
