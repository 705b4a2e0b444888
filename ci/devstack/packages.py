"""Install what the stack runs: Debian 12 packages system-wide, Debian 13's engine privately.

Debian 12's docker.io (20.10) has no buildx and exports only inline cache, so the engine
comes from Debian 13 (docker.io 26, containerd 1.7, docker-buildx 0.13), fetched with a
private apt state (the system's apt configuration is untouched) and unpacked with
`dpkg -x` into a private prefix. Debian 13's runc needs a newer glibc, so it is never
unpacked; Debian 12's runc serves. The archive URI is taken from the machine's own sources.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from devstack.procs import StackError

# Debian 12 packages the stack runs (docker.io's own dependencies included: iptables), and
# qemu's static interpreters with binfmt-support for linux/arm64 and linux/s390x builds;
# chromium: the integration tests render `prebuild report --html` in it, headless.
SYSTEM_PACKAGES = (
    "runc",
    "docker-registry",
    "iptables",
    "qemu-user-static",
    "binfmt-support",
    "chromium",
    "podman",  # the runner side: `prebuild pull --engine podman`, rootful and rootless
    "uidmap",  # newuidmap/newgidmap for rootless podman
    "python3",  # the rootless runner user's interpreter (root's may be out of its reach)
)
ENGINE_PACKAGES = ("docker.io", "containerd", "docker-buildx", "docker-cli")
ENGINE_SUITE = "trixie"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def check_machine() -> None:
    """Fail early, naming what is missing, where the stack cannot work."""
    if os.geteuid() != 0:
        raise StackError(
            "the local stack needs root (it runs a private Docker Engine); run as root"
        )
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        raise StackError("the local stack needs a Debian-like system with apt-get and dpkg")
    if shutil.which("dpkg") is None:
        raise StackError("dpkg not found")


def _run(argv: list[str], what: str) -> str:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise StackError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return proc.returncode == 0 and proc.stdout.strip() == "install ok installed"


def ensure_system_packages(say) -> None:
    """apt-get install the SYSTEM_PACKAGES that are missing (one apt run for all)."""
    missing = [pkg for pkg in SYSTEM_PACKAGES if not _installed(pkg)]
    if not missing:
        return
    say(f"installing {' '.join(missing)} with apt-get")
    _run(["apt-get", "update", "-qq"], "apt-get update (is the Debian package archive reachable?)")
    _run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], "apt-get install"
    )


def archive_uri() -> str:
    """The Debian archive URI the machine already uses (never a hard-coded host)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and (path.suffix in (".list", ".sources") or path.name == "sources.list"):
            texts.append(path.read_text(errors="replace"))
    for text in texts:
        for match in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in match.group(1) and "debian" in match.group(1):
                return match.group(1)
        for match in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.M):
            if "security" not in match.group(1) and "debian" in match.group(1):
                return match.group(1)
    raise StackError(
        "no Debian archive found in /etc/apt/sources.list{,.d}: cannot fetch the engine"
    )


def ensure_engine(prefix: Path, debs: Path, say) -> None:
    """Download (once, cached) and unpack Debian 13's engine packages into `prefix`."""
    marker = prefix / ".complete"
    if marker.exists():
        return
    debs.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("_", 1)[0] for p in debs.glob("*.deb")}
    wanted = [pkg for pkg in ENGINE_PACKAGES if pkg not in have]
    if wanted:
        say(f"downloading {' '.join(wanted)} from Debian {ENGINE_SUITE}")
        _download(wanted, debs)
    if prefix.exists():
        shutil.rmtree(prefix)
    prefix.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(prefix)], f"dpkg -x {deb.name}")
    if not (prefix / "usr/sbin/dockerd").exists():
        raise StackError(f"unpacked engine has no dockerd under {prefix}")
    marker.write_text("ok\n")


def _download(packages: list[str], dest: Path) -> None:
    apt_download(packages, dest, dest.parent / "apt")


def apt_download(
    packages: list[str], dest: Path, apt_dir: Path, architectures: tuple[str, ...] = ()
) -> None:
    """`apt-get download` from Debian ENGINE_SUITE under a private apt state in `apt_dir`.

    `architectures` (e.g. arm64, s390x) are added to apt's list for this state only, so
    `busybox-static:arm64` resolves without `dpkg --add-architecture` on the machine.
    """
    (apt_dir / "lists/partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "cache/archives/partial").mkdir(parents=True, exist_ok=True)
    sources = apt_dir / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {archive_uri()} {ENGINE_SUITE} main\n")
    opts = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/nonexistent",
        f"-oDir::State::Lists={apt_dir / 'lists'}",
        f"-oDir::Cache={apt_dir / 'cache'}",
        "-oAPT::Sandbox::User=root",
        *(f"-oAPT::Architectures::={arch}" for arch in architectures),
    ]
    _run(
        ["apt-get", "update", "-qq", *opts],
        f"apt-get update for Debian {ENGINE_SUITE} (network to the archive?)",
    )
    tmp = dest / ".partial"
    tmp.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["apt-get", "download", "-qq", *opts, *packages], cwd=tmp, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise StackError(
            f"apt-get download {' '.join(packages)} failed:\n{proc.stderr.strip()[-800:]}"
        )
    for deb in tmp.glob("*.deb"):
        deb.rename(dest / deb.name)
    tmp.rmdir()
