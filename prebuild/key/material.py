"""The content key: sha256 of a canonical JSON of everything that shapes an image.

The key must change whenever the built image could change, and only then. What goes in is
gathered by `plan`; this module only canonicalises and hashes it, so the same material gives
the same key on every machine (paths are repo-relative, never mtimes, owners or umasks).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from prebuild.context.inputs import InputFile

# Bump when the material's meaning changes: every key changes with it, on purpose.
KEY_VERSION = 1
TAG_LENGTH = 24  # hex chars of the key in the image tag: 96 bits, collision-free in practice


@dataclass(frozen=True)
class BaseInput:
    """An image the build reads from outside the context (FROM or COPY --from)."""

    ref: str  # as written in the Dockerfile, after ARG expansion
    digest: str | None = None  # platform manifest digest(s), joined; None when not resolved
    sibling: str | None = None  # name of the image of this set it refers to
    sibling_key: str | None = None

    def as_json(self) -> dict[str, str | None]:
        if self.sibling:
            return {"ref": self.ref, "sibling": self.sibling, "key": self.sibling_key}
        return {"ref": self.ref, "digest": self.digest}


@dataclass(frozen=True)
class KeyMaterial:
    """Everything that went into one image's key; `explain` prints exactly this."""

    dockerfile: str  # repo-relative path
    dockerfile_digest: str
    target: str | None
    platforms: tuple[str, ...]  # resolved (a bare "linux" became e.g. linux/amd64)
    build_args: dict[str, str]
    labels: dict[str, str]
    context_mode: str  # "sources" (what COPY/ADD match) or "whole-context" (fallback)
    inputs: tuple[InputFile, ...]
    bases: tuple[BaseInput, ...]
    extra_inputs: tuple[InputFile, ...] = ()
    provisional: bool = False  # bases keyed by reference only (offline): not a real key
    notes: tuple[str, ...] = field(default=(), compare=False)

    def canonical(self) -> bytes:
        doc = {
            "version": KEY_VERSION,
            "dockerfile": {"path": self.dockerfile, "digest": self.dockerfile_digest},
            "target": self.target,
            "platforms": sorted(self.platforms),
            "build_args": dict(sorted(self.build_args.items())),
            "labels": dict(sorted(self.labels.items())),
            "context_mode": self.context_mode,
            "inputs": [_file(f) for f in sorted(self.inputs, key=lambda f: f.path)],
            "extra_inputs": [_file(f) for f in sorted(self.extra_inputs, key=lambda f: f.path)],
            "bases": sorted((b.as_json() for b in self.bases), key=lambda b: str(b["ref"])),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _file(f: InputFile) -> list[object]:
    return [f.path, f.executable, f.digest]


def compute(material: KeyMaterial) -> str:
    """The key: hex sha256 of the canonical material."""
    return hashlib.sha256(material.canonical()).hexdigest()


def tag_for(key: str) -> str:
    return key[:TAG_LENGTH]


def explain(material: KeyMaterial, key: str) -> list[str]:
    """Human-readable lines naming every input of the key, in the order they are hashed."""
    lines = [
        f"key        {key}"
        + ("  (provisional: bases not resolved)" if material.provisional else "")
    ]
    lines.append(f"dockerfile {material.dockerfile}  {material.dockerfile_digest}")
    lines.append(f"target     {material.target or '(last stage)'}")
    lines.append(f"platforms  {', '.join(material.platforms)}")
    for name, value in sorted(material.build_args.items()):
        lines.append(f"build-arg  {name}={value}")
    for name, value in sorted(material.labels.items()):
        lines.append(f"label      {name}={value}")
    for base in sorted(material.bases, key=lambda b: b.ref):
        if base.sibling:
            lines.append(f"base       {base.ref}  -> image '{base.sibling}' key {base.sibling_key}")
        else:
            lines.append(
                f"base       {base.ref}  {base.digest or '(unresolved: keyed by reference)'}"
            )
    lines.append(f"context    {material.context_mode}: {len(material.inputs)} file(s)")
    for f in material.inputs:
        lines.append(f"  input    {f.path}  {'x' if f.executable else '-'}  {f.digest}")
    for f in material.extra_inputs:
        lines.append(f"  extra    {f.path}  {'x' if f.executable else '-'}  {f.digest}")
    lines.extend(f"note       {note}" for note in material.notes)
    return lines
