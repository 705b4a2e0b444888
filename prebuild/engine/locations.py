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
