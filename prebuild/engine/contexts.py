"""Build machines named by docker context: the engine's own (`docker`-driver) builder of
another context.

buildx lists every docker context as a builder of driver `docker` (`docker buildx ls` shows a
context `eng2` as builder `eng2`), yet `docker buildx build --builder eng2` refuses it unless
eng2 is the current context ("use `docker --context=eng2 buildx` to switch to context"). So such
a builder is selected through its context, as `docker --context NAME` does: for every docker
call this process makes, DOCKER_CONTEXT names it and DOCKER_HOST (which would otherwise win
over DOCKER_CONTEXT) is dropped. Any other builder (docker-container, remote, kubernetes) is
not a context and passes to buildx as `--builder NAME` unchanged.
"""

from __future__ import annotations

import json
import os

from prebuild.engine import process
from prebuild.engine.locations import docker_config_dir
from prebuild.errors import UsageError


def _inspect(name: str) -> dict[str, object] | None:
    """`docker context inspect NAME`, or None when there is no such context."""
    # its own process group, killed at the deadline (engine/process)
    code, stdout, _ = process.run(["docker", "context", "inspect", name], timeout=15.0)
    if code != 0:
        return None
    try:
        found = json.loads(stdout)
    except ValueError:
        return None
    return found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None


def use_context(name: str) -> None:
    """Point every later docker call of this process at context `name` (checked to exist)."""
    if _inspect(name) is None:
        raise UsageError(
            f"no docker context named {name!r}",
            hint="`docker context ls` lists them; `docker context create NAME --docker "
            "host=ssh://USER@HOST` makes one for another build machine",
        )
    _switch(name)


def _switch(name: str) -> None:
    os.environ["DOCKER_CONTEXT"] = name
    os.environ.pop("DOCKER_HOST", None)
    from prebuild.engine import buildx

    buildx.client.cache_clear()  # a client made earlier was bound to the previous engine


def current() -> str:
    """The context docker would use now: DOCKER_HOST means the default one, as in the CLI."""
    if os.environ.get("DOCKER_HOST"):
        return "default"
    return os.environ.get("DOCKER_CONTEXT") or _config_context() or "default"


def _config_context() -> str | None:
    try:
        with open(docker_config_dir() / "config.json", encoding="utf-8") as handle:
            value = json.load(handle).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def resolve_builder(builder: str | None) -> str | None:
    """The `--builder` to pass to buildx: None after switching to the context a builder of
    that name belongs to (a context's own builder), else `builder` itself."""
    if builder is None or builder == current():
        return builder
    if _inspect(builder) is None:
        return builder  # a buildx instance: docker-container, remote, kubernetes
    _switch(builder)
    return None
