"""After a push: delete the manifests it superseded (see registry/supersede.py for why).

Best effort by design: the image is built and pushed whatever happens here, so a registry
that refuses deletes or fails to answer costs a note, never the build.
"""

from __future__ import annotations

from prebuild.engine.buildx import BuildRequest
from prebuild.errors import RegistryError
from prebuild.model import Project
from prebuild.plan.planner import make_client
from prebuild.registry import supersede


def pushed_refs(request: BuildRequest) -> list[str]:
    """The tags a build re-points: its own tags and a registry cache ref."""
    refs = list(request.tags)
    cache = request.cache_to or {}
    if cache.get("type") == "registry" and cache.get("ref"):
        refs.append(cache["ref"])
    return refs


def before(project: Project, request: BuildRequest) -> dict[str, str]:
    """What the refs point at before the push ({} when the registry cannot tell)."""
    try:
        return supersede.current(make_client(project, deadline=20.0), pushed_refs(request))
    except RegistryError:
        return {}


def after(project: Project, previous: dict[str, str]) -> str | None:
    """Delete what the push left unused; a one-line note of it (None: nothing moved)."""
    if not previous:
        return None
    try:
        done = supersede.cleanup(make_client(project, deadline=30.0), previous)
    except RegistryError as error:
        return f"superseded manifests left for later: {error.message.splitlines()[0]}"
    if done.refused:
        return "the registry refuses deletes: superseded manifests stay until its own GC"
    if not done.deleted:
        return None
    return f"deleted {len(done.deleted)} superseded manifest(s) (previous cache, rebuilt tags)"
