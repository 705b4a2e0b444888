"""The docker CLI's own unix socket, when it is certainly the one the CLI would use.

The runner hook's tag and ping go straight to the Engine API there: one HTTP request instead
of starting the docker CLI (the CLI stays the fallback for every other kind of endpoint).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from urllib.parse import urlencode

from prebuild.engine.locations import docker_config_dir
from prebuild.registry import refs


def api_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message") or body.decode(errors="replace"))
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def engine_socket() -> str | None:
    """The unix socket the docker CLI would talk to, when that is certain: DOCKER_HOST names a
    unix socket, or nothing names another engine (no DOCKER_HOST, no DOCKER_CONTEXT, no
    current context in the docker config) and the default socket exists. None otherwise."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host.removeprefix("unix://") if host.startswith("unix:///") else None
    if os.environ.get("DOCKER_CONTEXT", "default") != "default":
        return None
    path = docker_config_dir() / "config.json"
    try:
        current = json.loads(path.read_text()).get("currentContext")
    except FileNotFoundError:
        current = None
    except (OSError, ValueError, AttributeError):
        return None
    default = "/var/run/docker.sock"
    return default if current in (None, "", "default") and os.path.exists(default) else None


# A target the CLI would send as is: [host/]path, optional tag, no digest (else: the CLI).
_PLAIN_TARGET = re.compile(rf"(?:{refs.DOMAIN}/)?{refs.NAME}(?::{refs.TAG})?")


def tag_query(target: str) -> str | None:
    """`repo=..&tag=..` as the docker CLI sends for `docker tag SOURCE TARGET` (tag defaults to
    latest), or None when the CLI should parse the target itself."""
    if not _PLAIN_TARGET.fullmatch(target):
        return None
    repo, tag = target, "latest"
    name, sep, last = target.rpartition("/")
    if ":" in last:
        repo, tag = f"{name}{sep}{last.split(':', 1)[0]}", last.split(":", 1)[1]
    return urlencode({"repo": repo, "tag": tag})
