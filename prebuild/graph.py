"""Dependency order of the image set: topological waves (images FROM siblings come later).

Ordering is stdlib `graphlib`; `find_cycles` is the one cycle finder, used both to name the
cycle when ordering fails and by config validation, which reports every distinct cycle.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence

from prebuild.errors import ConfigError


def waves(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Group images into waves: every image's dependencies are in earlier waves.

    Dependencies outside the mapping are ignored (they are not being scheduled).
    Raises ConfigError naming the cycle if there is one.
    """
    inside = {name: [d for d in deps if d in depends_on] for name, deps in depends_on.items()}
    sorter = graphlib.TopologicalSorter(inside)
    try:
        sorter.prepare()
    except graphlib.CycleError:
        cycle = find_cycles({name: sorted(deps) for name, deps in sorted(inside.items())})[0]
        shown = " -> ".join([*cycle, cycle[0]])
        raise ConfigError(f"images depend on each other in a cycle: {shown}") from None
    result: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        result.append(ready)
        sorter.done(*ready)
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


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Distinct cycles found by depth-first search, each rotated to start at its first node in
    `graph` order (so messages are stable)."""
    position = {name: i for i, name in enumerate(graph)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []
    seen: set[frozenset[str]] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
                    cycles.append(cycle[start:] + cycle[:start])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return cycles
