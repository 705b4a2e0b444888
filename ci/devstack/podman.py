"""Podman for the runner-side tests: root's store private to this stack, and a rootless user.

On the machines the stack targets, runc cannot raise RLIMIT_NOFILE/NPROC to podman's default
ulimits ("error setting rlimit type 7: operation not permitted"), so every containers.conf
written here sets `default_ulimits = []`; the rootless user's also sets `netns = "host"`.
Root's podman uses a storage.conf of its own (graph under the state dir) so tests may wipe it
without touching the machine's /var/lib/containers. The rootless user (ROOTLESS_USER) gets
subordinate uid/gid ranges that overlap no other's, and its own store in its home, as a
self-hosted runner account has.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from devstack.layout import ROOTLESS_USER, Layout
from devstack.procs import StackError

CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n"
# rootless: the host's network namespace. The default (slirp4netns) opens /dev/net/tun, which
# some machines keep root-only (mode 0600), and then every RUN step and `podman run` fails
ROOTLESS_CONTAINERS_CONF = CONTAINERS_CONF + 'netns = "host"\n'
SUBID_SIZE = 65536
SUBID_FLOOR = 100000


def containers_conf(lay: Layout) -> Path:
    return lay.state / "containers.conf"


def storage_conf(lay: Layout) -> Path:
    return lay.state / "storage.conf"


def ensure(lay: Layout, say) -> None:
    containers_conf(lay).write_text(CONTAINERS_CONF)
    storage_conf(lay).write_text(
        '[storage]\ndriver = "overlay"\n'
        f'graphroot = "{lay.state / "podman" / "storage"}"\n'
        f'runroot = "{lay.run / "podman"}"\n'
    )
    _ensure_user(say)


def _ensure_user(say) -> None:
    try:
        user = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        say(f"creating user {ROOTLESS_USER} (rootless podman tests)")
        proc = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", ROOTLESS_USER],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise StackError(f"useradd {ROOTLESS_USER} failed: {proc.stderr.strip()}") from None
        user = pwd.getpwnam(ROOTLESS_USER)
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        _ensure_range(path, say)
    config = Path(user.pw_dir) / ".config" / "containers"
    config.mkdir(parents=True, exist_ok=True)
    (config / "containers.conf").write_text(ROOTLESS_CONTAINERS_CONF)
    for path in (config.parent, config, config / "containers.conf"):
        os.chown(path, user.pw_uid, user.pw_gid)


def _ensure_range(path: Path, say) -> None:
    """USER:START:COUNT past every range already given out (a shared range is a hole)."""
    lines = path.read_text().splitlines() if path.exists() else []
    if any(line.split(":", 1)[0] == ROOTLESS_USER for line in lines):
        return
    end = SUBID_FLOOR
    for line in lines:
        parts = line.split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            end = max(end, int(parts[1]) + int(parts[2]))
    with open(path, "a") as handle:
        handle.write(f"{ROOTLESS_USER}:{end}:{SUBID_SIZE}\n")
    say(f"{path}: {ROOTLESS_USER} gets {end}-{end + SUBID_SIZE - 1}")
