"""Dockerfile checks `validate` runs and `plan` relies on: every Dockerfile parses, every
`target` names a stage, and no images build FROM each other in a cycle.

Only the Dockerfiles are read (no context hashing, no registry), so `validate` stays cheap;
each problem is a located ConfigError (the FROM line of the cycle, the config's `target`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prebuild.analysis.image import ExternalImage, analyse_dockerfile, classify
from prebuild.errors import ConfigError
from prebuild.graph import find_cycles
from prebuild.model import ImageSpec, Project


@dataclass(frozen=True)
class Edges:
    """What one image builds from: declared depends_on and siblings found in its Dockerfile."""

    spec: ImageSpec
    dockerfile: str  # repo-relative label
    externals: Sequence[ExternalImage]


def check_dockerfiles(project: Project) -> list[ConfigError]:
    """Every problem found in the project's Dockerfiles, located."""
    names = {spec.name for spec in project.images}
    registry = project.settings.registry
    errors: list[ConfigError] = []
    edges: dict[str, Edges] = {}
    for spec in project.images:
        try:
            _, label, parsed = analyse_dockerfile(spec)
        except ConfigError as error:
            errors.append(error)
            continue
        found = [classify(ref, names, registry, spec.name) for ref in parsed.external_refs]
        edges.setdefault(spec.name, Edges(spec, label, found))
    return errors + cycle_errors(edges)


def cycle_errors(edges: Mapping[str, Edges]) -> list[ConfigError]:
    """One error per cycle that goes through at least one FROM (pure depends_on cycles are the
    config's own check), located at the FROM line that closes into the next image."""
    graph = {
        name: sorted(
            {e.sibling for e in edge.externals if e.sibling is not None and e.sibling in edges}
            | {d for d in edge.spec.depends_on if d in edges}
        )
        for name, edge in edges.items()
    }
    errors = []
    for cycle in find_cycles(graph):
        steps = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        froms = [(a, b, _from_line(edges[a], b)) for a, b in steps]
        located = [(a, b, line) for a, b, line in froms if line is not None]
        if not located:
            continue
        image, sibling, line = located[0]
        path = " -> ".join([*cycle, cycle[0]])
        errors.append(
            ConfigError(
                f"images build FROM each other in a cycle: {path} "
                f"(image {image!r} builds FROM {sibling!r} here)",
                file=edges[image].dockerfile,
                line=line,
            )
        )
    return errors


def _from_line(edge: Edges, sibling: str) -> int | None:
    return next((e.line for e in edge.externals if e.sibling == sibling), None)


def raise_all(errors: Sequence[ConfigError]) -> None:
    """Raise the errors as one (the CLI prints each on its line, exit 2); nothing if empty."""
    from prebuild.config.load import ConfigErrors

    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(list(errors))
