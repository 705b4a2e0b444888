"""Checks across keys and against the filesystem, run once the schema is valid.

Each returns Problems rather than raising so one run reports every mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prebuild.config.locate import Loc, Problem
from prebuild.config.values import did_you_mean
from prebuild.graph import find_cycles
from prebuild.model import ImageSpec
from prebuild.pathnames import relative_or_absolute

if TYPE_CHECKING:  # also called with config_fast's tables, which quack like these models
    from prebuild.config.schema import ConfigModel, ImageModel


@dataclass(frozen=True)
class Entry:
    """An image and where it came from: `[[image]]` number `index` (with its table) or a source."""

    spec: ImageSpec
    index: int | None = None
    table: ImageModel | None = None

    def problem(
        self, message: str, key: str | None = None, *, line_loc: Loc | None = None
    ) -> Problem:
        """A Problem located at this image's `key` (or its table when key is None)."""
        if self.index is None:
            return Problem(message, origin=self.spec.origin, suffix=f".{key}" if key else "")
        loc: Loc = ("image", self.index, *((key,) if key else ()))
        return Problem(message, loc=loc, line_loc=line_loc)


def check_all(config: ConfigModel, entries: Sequence[Entry]) -> list[Problem]:
    return [
        *check_duplicates(entries),
        *check_dependencies(entries),
        *check_paths(config, entries),
        *check_s3(config, entries),
    ]


def check_duplicates(entries: Sequence[Entry]) -> list[Problem]:
    first: dict[str, Entry] = {}
    problems = []
    for entry in entries:
        name = entry.spec.name
        if name in first:
            where = _where(first[name])
            problems.append(
                entry.problem(f"duplicate image name {name!r} (first defined {where})", "name")
            )
        else:
            first[name] = entry
    return problems


def _where(entry: Entry) -> str:
    origin = entry.spec.origin
    if origin is None:
        return "earlier"
    return "at " + ":".join(p for p in (origin.file, str(origin.line or "")) if p)


def check_dependencies(entries: Sequence[Entry]) -> list[Problem]:
    """Unknown names in depends_on (with did-you-mean) and cycles (each reported once)."""
    names: dict[str, Entry] = {}
    for entry in entries:
        names.setdefault(entry.spec.name, entry)  # duplicates are reported elsewhere
    problems = []
    for entry in entries:
        for position, dep in enumerate(entry.spec.depends_on):
            if dep not in names:
                hint = did_you_mean(dep, sorted(names))
                problem = entry.problem(
                    f"depends_on names unknown image {dep!r}{hint}", "depends_on"
                )
                if problem.loc is not None:
                    problem = Problem(problem.message, loc=(*problem.loc, position))
                problems.append(problem)
    for cycle in find_cycles(
        {n: [d for d in e.spec.depends_on if d in names] for n, e in names.items()}
    ):
        entry = names[cycle[0]]
        problems.append(
            entry.problem(f"dependency cycle: {' -> '.join([*cycle, cycle[0]])}", "depends_on")
        )
    return problems


def check_paths(config: ConfigModel, entries: Sequence[Entry]) -> list[Problem]:
    """Context directories and Dockerfiles must exist; the line is wherever the path was set."""
    problems = []
    for entry in entries:
        spec, table = entry.spec, entry.table
        context_loc = _set_at(entry, "context", config.defaults.context is not None)
        if not spec.context.is_dir():
            what = "is not a directory" if spec.context.exists() else "not found"
            shown = relative_or_absolute(spec.context, spec.repo_root)
            message = f"context directory {what}: {shown}"
            problems.append(entry.problem(message, "context", line_loc=context_loc))
            continue
        if not spec.dockerfile.is_file():
            what = "is a directory" if spec.dockerfile.is_dir() else "not found"
            message = f"Dockerfile {what}: {relative_or_absolute(spec.dockerfile, spec.repo_root)}"
            line_loc = _set_at(entry, "dockerfile", config.defaults.dockerfile is not None)
            derived = (
                table is not None and table.dockerfile is None and not config.defaults.dockerfile
            )
            if derived:
                message += " (the default <context>/Dockerfile; set 'dockerfile' to change it)"
                line_loc = context_loc
            problems.append(entry.problem(message, "dockerfile", line_loc=line_loc))
    return problems


def _set_at(entry: Entry, key: str, in_defaults: bool) -> Loc | None:
    """Where `key` was written for this image: its own table, else [defaults], else its header."""
    if entry.index is None or entry.table is None:
        return None
    if getattr(entry.table, key) is not None:
        return ("image", entry.index, key)
    if in_defaults:
        return ("defaults", key)
    return ("image", entry.index)


def check_s3(config: ConfigModel, entries: Sequence[Entry]) -> list[Problem]:
    """Backends s3 / s3-sync need a bucket: once for [cache], once per image that opts in."""
    problems = []
    project = config.cache
    project_bad = project.backend in ("s3", "s3-sync") and not (project.s3 and project.s3.bucket)
    if project_bad:
        message = f"cache backend {project.backend!r} needs [cache.s3] with a bucket"
        problems.append(
            Problem(message, loc=("cache", "s3", "bucket"), line_loc=("cache", "backend"))
        )
    for entry in entries:
        cache, table = entry.spec.cache, entry.table
        if cache.backend not in ("s3", "s3-sync") or cache.s3 is not None:
            continue
        own = table is not None and table.cache is not None
        if own or (entry.index is None and not project_bad):
            message = (
                f"cache backend {cache.backend!r} needs a bucket ([cache.s3] or cache.s3.bucket)"
            )
            line_loc = ("image", entry.index, "cache") if entry.index is not None else None
            problems.append(entry.problem(message, "cache", line_loc=line_loc))
    return problems
