"""Multi-architecture images on the real stack: qemu emulation in the stack's engine, the
seeded multi-platform busybox, the distribution registry.

Images are tiny (busybox plus `uname -m` recorded at build time), so every emulated step
takes a fraction of a second; what each test checks is what a CI job would notice: which
platforms the pushed index lists, what an emulated container says it runs on.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from devstack import emulation

from tests.integration.cachecheck import Run, prebuild
from tests.integration.conftest import STACK, Stack, wipe_engine, write

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
ALL3 = ["linux/amd64", "linux/arm64", "linux/s390x"]
UNAME = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/s390x": "s390x"}
S390X_ENTRY = Path("/proc/sys/fs/binfmt_misc/qemu-s390x")


def make_repo(
    root: Path,
    stack: Stack,
    registry: str,
    images: dict[str, list[str]],
    *,
    extra: str = "",
    noise: int = 0,
) -> Path:
    """One image per entry, FROM the seeded base, recording its build-time `uname -m`;
    `noise` random bytes in a last layer make every rebuild leave real garbage."""
    toml = [f'registry = "{registry}"', "jobs = 2", extra, ""]
    for name, platforms in images.items():
        steps = [f"FROM {stack.base_image}", "RUN uname -m > /m", "COPY note.txt /note.txt"]
        steps += [f"RUN head -c {noise} /dev/urandom > /noise"] if noise else []
        write(root / name / "Dockerfile", "\n".join(steps) + "\n")
        write(root / name / "note.txt", f"{name}\n")
        toml += ["[[image]]", f'name = "{name}"', f'context = "{name}"']
        toml += [f"platforms = {json.dumps(platforms)}", ""]
    write(root / "prebuild.toml", "\n".join(toml))
    return root


def cli(stack: Stack, repo: Path, *args: str, report: bool = False) -> Run:
    return prebuild(stack, repo, *args, report=report)


def plan(stack: Stack, repo: Path) -> dict[str, dict]:
    run = cli(stack, repo, "plan", "--json")
    assert run.returncode == 0, run.stderr
    return {image["name"]: image for image in json.loads(run.stdout)["images"]}


def manifest(stack: Stack, ref: str) -> dict:
    repo, _, tag = ref.removeprefix(f"{stack.registry}/").rpartition(":")
    url = f"http://{stack.registry}/v2/{repo}/manifests/{tag}"
    response = requests.get(url, headers={"Accept": ACCEPT}, timeout=10)
    assert response.status_code == 200, (ref, response.status_code)
    return response.json()


def index_platforms(stack: Stack, ref: str) -> list[str]:
    doc = manifest(stack, ref)
    entries = doc.get("manifests") or []
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in entries)


def docker_run(stack: Stack, platform: str, image: str, *command: str) -> str:
    return stack.docker.run(image, list(command), platform=platform, remove=True).strip()


def pull(stack: Stack, repo: Path, name: str, local: str, *extra: str) -> dict:
    run = cli(stack, repo, "pull", name, "--tag-as", local, "--format", "json", *extra)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    return result[0] if isinstance(result, list) else result


def built(run: Run) -> dict[str, str]:
    return {row.split("\t")[0]: row.split("\t")[1] for row in run.stdout.splitlines() if row}


def test_foreign_and_multi_platform_images_build_push_and_pull_under_emulation(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    registry = f"{stack.registry}/{unique}"
    repo = make_repo(tmp_path, stack, registry, {"arm": ["linux/arm64"], "multi": ALL3})
    run = cli(stack, repo, "build", report=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert built(run) == {"arm": "built", "multi": "built"}
    refs = {name: run.image(name)["ref"] for name in ("arm", "multi")}
    assert index_platforms(stack, refs["multi"]) == ALL3  # exactly the configured platforms
    arm = manifest(stack, refs["arm"])  # one platform: an image manifest, or a 1-entry index
    if "manifests" in arm:
        assert index_platforms(stack, refs["arm"]) == ["linux/arm64"]

    wipe_engine(stack.docker)  # a fresh runner
    result = pull(stack, repo, "arm", "local/arm")  # default: the image's only platform
    assert result["outcome"] == "pulled", result
    assert docker_run(stack, "linux/arm64", "local/arm", "uname", "-m") == "aarch64"
    assert docker_run(stack, "linux/arm64", "local/arm", "cat", "/m") == "aarch64"
    for platform in ("linux/s390x", "linux/arm64"):
        local = f"local/multi-{platform.rsplit('/', 1)[1]}"
        result = pull(stack, repo, "multi", local, "--platform", platform)
        assert result["outcome"] == "pulled", result
        assert docker_run(stack, platform, local, "uname", "-m") == UNAME[platform]
        assert docker_run(stack, platform, local, "cat", "/m") == UNAME[platform]


def test_changing_platforms_changes_the_key(stack: Stack, tmp_path: Path, unique: str) -> None:
    registry = f"{stack.registry}/{unique}"
    repo = make_repo(tmp_path, stack, registry, {"img": ["linux/amd64", "linux/arm64"]})
    before = plan(stack, repo)["img"]["key"]
    config = repo / "prebuild.toml"
    config.write_text(config.read_text().replace('"linux/arm64"', '"linux/arm64", "linux/s390x"'))
    after = plan(stack, repo)["img"]
    assert after["platforms"] == ALL3
    assert None not in (before, after["key"]) and after["key"] != before


@pytest.fixture
def no_s390x_emulation(stack: Stack) -> Iterator[None]:
    """s390x emulation off for one test (the engine re-probes its platforms at start only),
    restored however the test ends."""
    assert S390X_ENTRY.read_text().startswith("enabled"), "the stack enables qemu-s390x"
    # other checkouts' `ci/stack up` re-enable the entry: they wait for this lock meanwhile
    with emulation.exclusive():
        try:
            S390X_ENTRY.write_text("0")
            restart_engine()
            assert "linux/s390x" not in builder_platforms(), "the restarted engine emulates"
            yield
        finally:
            S390X_ENTRY.write_text("1")
            restart_engine()
    assert "linux/s390x" in builder_platforms()


def restart_engine() -> None:
    proc = subprocess.run([str(STACK), "restart-engine"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def builder_platforms() -> str:
    proc = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return next(line for line in proc.stdout.splitlines() if line.startswith("Platforms:"))


def test_an_image_the_builder_cannot_build_fails_before_building_and_the_others_build(
    stack: Stack, no_s390x_emulation: None, tmp_path: Path, unique: str
) -> None:
    registry = f"{stack.registry}/{unique}"
    images = {"arm": ["linux/arm64"], "mainframe": ["linux/s390x"], "multi": ALL3}
    repo = make_repo(tmp_path, stack, registry, images)
    run = cli(stack, repo, "build", report=True)
    assert run.returncode == 1, run.stderr[-3000:]
    assert built(run) == {"arm": "built", "mainframe": "failed", "multi": "failed"}
    reason = run.image("mainframe")["reason"]
    assert reason.startswith("builder 'default' cannot build linux/s390x (it builds ")
    assert "qemu" in reason and "docker buildx create --append" in reason
    assert "linux/s390x" not in reason.split("(it builds ", 1)[1].split(")")[0]
    # neither s390x image got as far as a build: only arm's command ran
    commands = [line for line in run.stderr.splitlines() if line.startswith("$> docker buildx b")]
    # only arm is built (a cache export then an all-cached push): nothing for s390x
    assert commands and all("--platform linux/arm64 " in command for command in commands)


def test_split_build_two_platform_runs_and_merge_give_one_pullable_key_tag(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    registry = f"{stack.registry}/{unique}"
    repo = make_repo(tmp_path, stack, registry, {"img": ["linux/amd64", "linux/arm64"]})
    matrix = cli(stack, repo, "plan", "--matrix", "--split-platforms")
    assert matrix.returncode == 0, matrix.stderr
    include = json.loads(matrix.stdout)["include"]
    assert include == [
        {"image": "img", "wave": 0, "platform": "linux/amd64"},
        {"image": "img", "wave": 0, "platform": "linux/arm64"},
    ]
    for entry in include:  # one native runner per entry (here: both on the stack's engine)
        one = cli(stack, repo, "build", entry["image"], "--platform", entry["platform"])
        assert one.returncode == 0, one.stderr[-3000:]
        assert plan(stack, repo)["img"]["status"] == "missing"  # no key tag before the merge
    merged = cli(stack, repo, "merge", "img")
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert merged.stdout.split("\t")[:2] == ["img", "merged"]
    planned = plan(stack, repo)["img"]
    assert planned["status"] == "present"
    assert index_platforms(stack, planned["ref"]) == ["linux/amd64", "linux/arm64"]

    wipe_engine(stack.docker)
    for platform in ("linux/arm64", "linux/amd64"):
        local = f"local/split-{platform.rsplit('/', 1)[1]}"
        result = pull(stack, repo, "img", local, "--platform", platform)
        assert result["outcome"] == "pulled", result
        assert docker_run(stack, platform, local, "cat", "/m") == UNAME[platform]


# -- retention with distribution 2.8 ----------------------------------------------------------


def blob(storage: Path, digest: str) -> Path:
    hexpart = digest.removeprefix("sha256:")
    return storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def repo_live_and_stored(storage: Path, repository: str) -> tuple[int, int]:
    """(bytes the repository's tags need, bytes of every blob the repository links that is
    still on disk), read from distribution's filesystem layout, not through prebuild."""
    root = storage / "docker/registry/v2/repositories" / repository
    live: set[str] = set()

    def mark(digest: str) -> None:
        if digest in live or not blob(storage, digest).exists():
            return
        live.add(digest)
        doc = json.loads(blob(storage, digest).read_bytes())
        for desc in [doc.get("config"), *(doc.get("layers") or [])]:
            if isinstance(desc, dict):
                live.add(desc["digest"])
        for child in doc.get("manifests") or []:
            mark(child["digest"])

    for link in root.glob("_manifests/tags/*/current/link"):
        mark(link.read_text().strip())
    linked = {
        "sha256:" + link.parent.name
        for pattern in ("_layers/sha256/*/link", "_manifests/revisions/sha256/*/link")
        for link in root.glob(pattern)
    }
    size = {d: blob(storage, d).stat().st_size for d in linked | live if blob(storage, d).exists()}
    return sum(size[d] for d in live if d in size), sum(size.values())


def pullable_platforms(stack: Stack, repository: str, tag: str) -> list[str]:
    """Platforms of REPO:TAG whose manifest, config and every layer the registry serves."""
    base = f"http://{stack.registry}/v2/{repository}"
    index = requests.get(f"{base}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10)
    assert index.status_code == 200, (tag, index.status_code)
    found = []
    for entry in index.json().get("manifests") or []:
        child = requests.get(
            f"{base}/manifests/{entry['digest']}", headers={"Accept": ACCEPT}, timeout=10
        )
        if child.status_code != 200:
            continue
        doc = child.json()
        blobs = [doc["config"], *doc["layers"]]
        if all(
            requests.head(f"{base}/blobs/{d['digest']}", timeout=10).status_code == 200
            for d in blobs
        ):
            found.append(f"{entry['platform']['os']}/{entry['platform']['architecture']}")
    return sorted(found)


def test_after_retention_and_registry_gc_every_kept_tag_pulls_for_every_platform(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    """distribution 2.8's `garbage-collect --delete-untagged` deletes index children
    (distribution#3178); the stack's GC runs without it and prebuild deletes what it
    superseded itself. Ten nights of a changing two-platform image stay bounded."""
    registry = f"{stack.registry}/{unique}"
    two = ["linux/amd64", "linux/arm64"]
    # 400 kB per platform and night next to the 2 MB busybox of each platform: an old cache
    # or an old index's children left behind would show within a few nights
    gc_keep = "[gc]\nkeep = 2\n"
    repo = make_repo(tmp_path, stack, registry, {"img": two}, extra=gc_keep, noise=400_000)
    storage = Path(stack.env["PREBUILD_STACK_DATA"]) / "registry"
    repository = f"{unique}/img"
    ratios = []
    for night in range(10):
        write(repo / "img" / "note.txt", f"night {night}\n")
        run = cli(stack, repo, "build", report=True)
        assert run.returncode == 0 and built(run) == {"img": "built"}, run.stderr[-3000:]
        gc = cli(stack, repo, "gc", "--apply", "--json")
        assert gc.returncode == 0, gc.stderr[-3000:]
        collected = subprocess.run(
            [str(STACK), "registry-gc"], env=stack.run_env(), capture_output=True, text=True
        )
        assert collected.returncode == 0, collected.stderr
        (report,) = json.loads(gc.stdout)["registry"]
        kept = [k["tag"] for k in report["kept"] if k["tag"] not in ("buildcache",)]
        kept = [t for t in kept if not t.startswith("buildcache")]
        assert len([t for t in kept if t != "latest"]) == min(night + 1, 2), report["kept"]
        for tag in kept:
            assert pullable_platforms(stack, repository, tag) == two, (night, tag)
        live, stored = repo_live_and_stored(storage, repository)
        ratios.append(stored / live)
    print(f"\nstored/live per night: {', '.join(f'{r:.3f}' for r in ratios)}")
    assert max(ratios) <= 1.25, ratios

    wipe_engine(stack.docker)  # and the real client agrees: every kept tag, every platform
    for tag in kept:
        for platform in two:
            ref = f"{registry}/img:{tag}"
            stack.docker.image.pull(ref, quiet=True, platform=platform)
            assert docker_run(stack, platform, ref, "cat", "/m") == UNAME[platform]
