"""Concurrent builds of the same key: losing a race for a name is not a build failure.

Two runs building the same key at once (a nightly and a manual rebuild, on one engine or on
two) produce equally valid images for it, so both must end `built`. Two races fail a build
after every step succeeded:

- The docker driver on the containerd image store names its result by updating the image
  record and, when that says "not found", creating it (BuildKit's image exporter). Two builds
  exporting one name at once can both see "not found"; the later create fails the build with
  `image "NAME": already exists`, before anything was pushed.
- distribution's filesystem storage rewrites a tag's link file in place, so a HEAD on a tag
  another push is rewriting at that instant can answer 500 ("invalid checksum digest format");
  the pusher gives up on the first such answer with `unexpected status from HEAD request`.

Both are over once the other writer is done, and the build run again is all cache hits, so it
is run again, a bounded number of times with a short pause.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from prebuild.engine import buildx
from prebuild.engine import progress as progress_mod
from prebuild.engine.buildx import BuildRequest, BuildResult
from prebuild.errors import DockerError

ATTEMPTS = 3
PAUSE = 0.5  # seconds before the 2nd attempt, doubled before each later one
# An untagged result (a cache-only export) is recorded as moby-dangling@DIGEST: the same digest
# is the same content, so another build creating it first is the same race.
_DANGLING = "moby-dangling@"
_NAMED = re.compile(r'image "(?P<name>[^"]+)": already exists')
_TAG_HEAD = re.compile(
    r"unexpected status from HEAD request to https?://(?P<host>[^/\s]+)/v2/(?P<repo>\S+?)"
    r"/manifests/(?P<tag>[^\s:]+): 5\d\d"
)


def raced_name(error: DockerError, tags: tuple[str, ...]) -> str | None:
    """The name of this build another writer held at the same moment, if that is why it failed:
    one of its tags (image store or registry), its registry cache tag, or its untagged result."""
    ours = {_normal(t) for t in tags}
    repos = {t.rsplit(":", 1)[0] for t in ours}
    text = str(error)
    for match in _NAMED.finditer(text):
        if match["name"].startswith(_DANGLING) or _normal(match["name"]) in ours:
            return match["name"]
    for match in _TAG_HEAD.finditer(text):
        if f"{match['host']}/{match['repo']}" in repos:
            return f"{match['host']}/{match['repo']}:{match['tag']}"
    return None


def _normal(ref: str) -> str:
    """docker.io/library/x:latest and x name the same image record."""
    name = ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def build(
    request: BuildRequest,
    *,
    on_line: Callable[[str], None],
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BuildResult:
    """buildx.build, run again when only a race for one of its names failed it.

    The result's progress is the first attempt's: that is where the steps ran (a retry's
    steps are all cache hits of the attempt before it, which would overstate the cache).
    """
    first: list[str] | None = None
    for attempt in range(1, ATTEMPTS + 1):
        lines: list[str] = []
        try:
            result = buildx.build(request, on_line=_tee(lines, on_line))
        except DockerError as error:
            name = raced_name(error, request.tags)
            if name is None or attempt == ATTEMPTS:
                raise
            first = lines if first is None else first
            if on_retry is not None:
                on_retry(name)
            sleep(PAUSE * 2 ** (attempt - 1))
            continue
        if first is not None:
            result.progress = progress_mod.parse(first)
        return result
    raise AssertionError("unreachable")  # the loop returns or raises


def _tee(lines: list[str], on_line: Callable[[str], None]) -> Callable[[str], None]:
    def collect(text: str) -> None:
        lines.append(text)
        on_line(text)

    return collect
