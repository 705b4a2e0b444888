"""Where the docker CLI keeps its state, looked up once for everyone who reads it.

Credentials (registry auth), the current context (the engine socket) and buildx's current
builder all live under the same directory; reading it three ways would drift.
"""

from __future__ import annotations

import os
from pathlib import Path


def docker_config_dir(explicit: Path | None = None) -> Path:
    """`explicit`, else $DOCKER_CONFIG, else ~/.docker: the same place the docker CLI reads."""
    if explicit is not None:
        return explicit
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


def credential_files(explicit: Path | None = None) -> list[Path]:
    """Where registry credentials are read, first match wins: the docker config; for a podman
    runner (PREBUILD_ENGINE=podman, which `pull --engine podman` sets) podman's own auth files
    first, in containers-auth.json(5)'s order: $REGISTRY_AUTH_FILE, else
    $XDG_RUNTIME_DIR/containers/auth.json; then $XDG_CONFIG_HOME/containers/auth.json."""
    docker = docker_config_dir(explicit) / "config.json"
    if os.environ.get("PREBUILD_ENGINE") != "podman":
        return [docker]
    first = os.environ.get("REGISTRY_AUTH_FILE")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    primary = Path(first) if first else Path(runtime) / "containers" / "auth.json"
    return [primary, Path(config) / "containers" / "auth.json", docker]
