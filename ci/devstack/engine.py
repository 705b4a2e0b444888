"""A private Docker Engine (dockerd + its own containerd) with the containerd image store.

The containerd snapshotter is what lets the default `docker` buildx driver export
`type=registry` and `type=local` cache. Private socket, data-root, exec-root and pidfile;
`--iptables=false` leaves the host firewall alone (RUN steps then have no outbound network).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
from pathlib import Path

from devstack import procs
from devstack.layout import Layout


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=3)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(3)
        self.sock.connect(self._path)


def ping(sock: Path) -> bool:
    """True when the engine answers /_ping on its socket."""
    try:
        conn = _UnixHTTPConnection(str(sock))
        conn.request("GET", "/_ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def write_docker_config(lay: Layout) -> None:
    """A private DOCKER_CONFIG whose cli-plugins has buildx; the user's ~/.docker is unused."""
    plugins = lay.docker_config / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-buildx"
    target = lay.prefix / "usr/libexec/docker/cli-plugins/docker-buildx"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    config = lay.docker_config / "config.json"
    if not config.exists():
        config.write_text("{}\n")


def engine_env(lay: Layout) -> dict[str, str]:
    path = f"{lay.prefix}/usr/bin:{lay.prefix}/usr/sbin:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return {**env, "PATH": path}


def pidfile(lay: Layout, number: int = 1) -> Path:
    return lay.engine(number).pidfile


def running(lay: Layout, number: int = 1) -> bool:
    paths = lay.engine(number)
    return procs.read_pidfile(paths.pidfile) is not None and ping(paths.socket)


def recover(lay: Layout, number: int = 1) -> list[str]:
    """Clear what an unclean kill leaves: orphan shims/containerd, mounts, sockets, pidfiles."""
    paths = lay.engine(number)
    notes: list[str] = []
    if procs.read_pidfile(paths.pidfile) is not None:
        return notes
    orphans = procs.orphans_of(lay.prefix, paths.run)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    if orphans:
        notes.append(f"killed {len(orphans)} orphaned engine process(es) from {lay.prefix}")
    unmounted = procs.unmount_under(paths.data_root, paths.exec_root, paths.run)
    if unmounted:
        notes.append(f"unmounted {unmounted} leftover mount(s)")
    for stale in (
        paths.socket,
        paths.run / "dockerd.pid",
        paths.exec_root / "containerd/containerd.pid",
    ):
        stale.unlink(missing_ok=True)
    if paths.exec_root.exists():
        shutil.rmtree(paths.exec_root, ignore_errors=True)
    return notes


def start(lay: Layout, insecure: list[str], number: int = 1) -> None:
    paths = lay.engine(number)
    paths.run.mkdir(parents=True, exist_ok=True)
    paths.data_root.mkdir(parents=True, exist_ok=True)
    paths.daemon_json.write_text(
        json.dumps(
            {"features": {"containerd-snapshotter": True}, "insecure-registries": insecure},
            indent=2,
        )
    )
    argv = [
        str(lay.prefix / "usr/sbin/dockerd"),
        f"--config-file={paths.daemon_json}",
        f"--data-root={paths.data_root}",
        f"--exec-root={paths.exec_root}",
        f"--host=unix://{paths.socket}",
        f"--pidfile={paths.run / 'dockerd.pid'}",
        "--iptables=false",
        "--ip6tables=false",
    ]
    what = "dockerd" if number == 1 else f"dockerd {number}"
    procs.spawn(argv, pidfile=paths.pidfile, log=paths.log, env=engine_env(lay))
    procs.wait_until(lambda: ping(paths.socket), what=what, timeout=60, log=paths.log)
