"""Dependency order of the image set: topological waves (images FROM siblings come later)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prebuild.errors import ConfigError


def waves(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Group images into waves: every image's dependencies are in earlier waves.

    Dependencies outside the mapping are ignored (they are not being scheduled).
    Raises ConfigError naming the cycle if there is one.
    """
    remaining = {name: {d for d in deps if d in depends_on} for name, deps in depends_on.items()}
    result: list[list[str]] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            raise ConfigError(f"images depend on each other in a cycle: {_cycle(remaining)}")
        result.append(ready)
        for name in ready:
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return result


def order(depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    return [name for wave in waves(depends_on) for name in wave]


def closure(names: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """`names` and everything they transitively depend on."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(depends_on.get(name, ()))
    return seen


def dependents(name: str, depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """Every image that transitively builds FROM `name`."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for image, deps in depends_on.items():
            if image not in found and (name in deps or found.intersection(deps)):
                found.add(image)
                changed = True
    return found


def _cycle(remaining: Mapping[str, set[str]]) -> str:
    start = sorted(remaining)[0]
    path = [start]
    while True:
        nxt = sorted(remaining[path[-1]])[0]
        if nxt in path:
            return " -> ".join([*path[path.index(nxt) :], nxt])
        path.append(nxt)
