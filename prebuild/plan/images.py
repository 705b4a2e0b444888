"""What the plan says of each image: its spec, key material, key, ref and registry status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prebuild.analysis.image import ImageAnalysis
from prebuild.key import material as keys
from prebuild.key.material import KeyMaterial
from prebuild.model import ImageSpec

Status = Literal["present", "missing", "stale", "unknown"]


@dataclass
class ImagePlan:
    spec: ImageSpec
    analysis: ImageAnalysis
    platforms: tuple[str, ...]
    material: KeyMaterial | None = None
    key: str | None = None
    status: Status = "unknown"
    reason: str = ""
    digest: str | None = None  # the key tag's manifest digest, when its HEAD answered one
    # FROM/COPY --from name -> pinned image, for `--build-context NAME=docker-image://...`
    pins: dict[str, str] = field(default_factory=dict)
    registry: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tag(self) -> str | None:
        return keys.tag_for(self.key) if self.key else None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.spec.name}"

    @property
    def ref(self) -> str | None:
        return f"{self.repository}:{self.tag}" if self.tag else None

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self.analysis.depends_on

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key": self.key,
            "ref": self.ref,
            "platforms": list(self.platforms),
            "status": self.status,
            "reason": self.reason,
            "inputs": [f.path for f in self.analysis.inputs + self.analysis.extra_inputs],
            "bases": [e.written for e in self.analysis.externals],
            "depends_on": list(self.depends_on),
            "provisional": bool(self.material and self.material.provisional),
            **provenance_json(self.spec),
        }


def provenance_json(spec: ImageSpec) -> dict[str, object]:
    """Each build arg's value and where it came from (imported images), and the platform's."""
    origins = dict(spec.provenance)
    if not origins:
        return {}
    build_args = {
        name: {"value": value, "from": origins.get(f"build-arg {name}")}
        for name, value in spec.build_args.items()
    }
    return {"build_args": build_args, "platform_from": origins.get("platform")}


@dataclass
class Plan:
    images: list[ImagePlan]

    def by_name(self) -> dict[str, ImagePlan]:
        return {p.name: p for p in self.images}

    def dependency_map(self) -> dict[str, tuple[str, ...]]:
        return {p.name: p.depends_on for p in self.images}

    def as_json(self) -> dict[str, object]:
        return {"images": [p.as_json() for p in self.images]}
