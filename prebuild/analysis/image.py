"""Per-image static analysis: what a build reads from the checkout and from other images.

No registry, no engine: this is everything `plan --offline` can know. Siblings (images of the
same set that another image builds FROM) are recognised here from the Dockerfile's refs.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from prebuild.analysis import parse as dockerfile
from prebuild.analysis.parse import DockerfileAnalysis
from prebuild.analysis.types import ExternalRef
from prebuild.context import inputs
from prebuild.context.inputs import InputFile
from prebuild.errors import ConfigError
from prebuild.model import ImageSpec
from prebuild.pathnames import real_directory, relative_or_absolute
from prebuild.registry.refs import ImageRef


@dataclass(frozen=True)
class ExternalImage:
    """One FROM / COPY --from image of a build, classified."""

    written: str  # as the Dockerfile names it, after ARG expansion
    context_name: str  # the name BuildKit looks up for `--build-context NAME=...`
    sibling: str | None  # image of this set it refers to
    ref: ImageRef | None  # parsed reference (None for an unparsable one)
    line: int


@dataclass(frozen=True)
class ImageAnalysis:
    spec: ImageSpec
    dockerfile_path: str  # repo-relative
    dockerfile_digest: str
    dockerfile: DockerfileAnalysis
    context_mode: str  # "sources" or "whole-context"
    inputs: tuple[InputFile, ...]
    extra_inputs: tuple[InputFile, ...]
    externals: tuple[ExternalImage, ...]
    depends_on: tuple[str, ...]  # siblings: declared + found in FROM/COPY --from

    @property
    def notes(self) -> tuple[str, ...]:
        reasons = tuple(f"whole context hashed: {r}" for r in self.dockerfile.whole_context_reasons)
        return reasons + tuple(self.dockerfile.notes)


def familiar_name(ref: ImageRef) -> str:
    """The name BuildKit's dockerfile frontend looks named contexts up by: the familiar form
    (docker.io/library/ dropped) without a `:latest` tag."""
    name = ref.repository
    if ref.registry == "docker.io":
        name = name.removeprefix("library/")
    else:
        name = f"{ref.registry}/{name}"
    if ref.tag and ref.tag != "latest":
        name += f":{ref.tag}"
    if ref.digest:
        name += f"@{ref.digest}"
    return name


@functools.lru_cache(maxsize=8)
def _sibling_index(names: frozenset[str], registry: str) -> dict[str, str]:
    """Repository -> image name for every image of the set, written bare or under the registry:
    built once per set, so classifying a FROM is one lookup, not a parse per image name."""
    index: dict[str, str] = {}
    for name in sorted(names):
        for candidate in (name, f"{registry}/{name}"):
            try:
                index.setdefault(str(ImageRef.parse(candidate).repository_ref), name)
            except ValueError:
                continue
    return index


def _sibling_of(ref: ImageRef | None, names: Set[str], registry: str, own: str) -> str | None:
    if ref is None:
        return None
    found = _sibling_index(frozenset(names), registry).get(str(ref.repository_ref))
    return None if found == own else found  # FROM its own repository: the previous image


def classify(found: ExternalRef, names: Set[str], registry: str, own: str = "") -> ExternalImage:
    try:
        ref: ImageRef | None = ImageRef.parse(found.ref)
    except ValueError:
        ref = None
    return ExternalImage(
        written=found.ref,
        context_name=familiar_name(ref) if ref else found.ref,
        sibling=_sibling_of(ref, names, registry, own),
        ref=ref,
        line=found.line,
    )


def analyse_dockerfile(spec: ImageSpec) -> tuple[str, str, DockerfileAnalysis]:
    """(text, repo-relative label, analysis) of the image's Dockerfile; a `target` naming no
    stage is located at the config that set it."""
    text = dockerfile.read_dockerfile(spec.dockerfile)
    root = Path(real_directory(str(spec.repo_root)))
    file_label = relative_or_absolute(spec.dockerfile.resolve(), root)
    try:
        parsed = dockerfile.analyse(
            text, build_args=spec.build_args, target=spec.target, file=file_label
        )
    except dockerfile.MissingTarget as error:
        origin = spec.origin
        raise ConfigError(
            f"target stage {spec.target!r} is not a stage of {file_label}",
            file=origin.file if origin else None,
            line=origin.line if origin else None,
            key=f"{origin.key}.target" if origin and origin.key else f"image '{spec.name}'.target",
            hint=error.hint,
        ) from None
    return text, file_label, parsed


def analyse_image(spec: ImageSpec, *, names: set[str], registry: str) -> ImageAnalysis:
    """Parse the Dockerfile and hash what its build would read from the context."""
    text, file_label, parsed = analyse_dockerfile(spec)
    if not spec.context.is_dir():
        raise ConfigError(
            f"build context {spec.context} is not a directory", key=f"image '{spec.name}'.context"
        )
    ignore = inputs.load_dockerignore(spec.context, spec.dockerfile)
    if parsed.whole_context_reasons:
        mode = "whole-context"
        files = inputs.collect_context(spec.context, ignore=ignore, repo_root=spec.repo_root)
    else:
        mode = "sources"
        files = inputs.collect_sources(
            spec.context, parsed.sources, ignore=ignore, repo_root=spec.repo_root
        )
    extra = inputs.collect_paths(spec.repo_root, spec.extra_inputs) if spec.extra_inputs else []
    externals = tuple(classify(found, names, registry, spec.name) for found in parsed.external_refs)
    depends = tuple(sorted(set(spec.depends_on) | {e.sibling for e in externals if e.sibling}))
    return ImageAnalysis(
        spec=spec,
        dockerfile_path=file_label,
        dockerfile_digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        dockerfile=parsed,
        context_mode=mode,
        inputs=tuple(files),
        extra_inputs=tuple(extra),
        externals=externals,
        depends_on=depends,
    )
