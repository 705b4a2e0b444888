"""The nightly report as one JSON document: what each image did, why, when, and what it costs.

The same document is written to `--report`, kept in the history, and read back by
`prebuild report`, `explain --since` and the metrics: one shape for every reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prebuild import graph
from prebuild.report import results as outcomes
from prebuild.report.results import ImageResult

VERSION = 2
PRESENT = ("built", "skipped")  # an image with this status had its key in the registry after


def build_waves(depends_on: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Wave number per image (0: no sibling base): the timeline groups builds by it."""
    return {name: i for i, wave in enumerate(graph.waves(depends_on)) for name in wave}


def document(
    results: Sequence[ImageResult],
    *,
    started: datetime,
    finished: datetime,
    materials: Mapping[str, dict[str, Any]],
    depends_on: Mapping[str, Sequence[str]],
    storage: Mapping[str, int | None],
    revision: str | None = None,
) -> dict[str, Any]:
    waves = build_waves(depends_on)
    images = []
    for r in results:
        image = asdict(r)
        image["start_offset"] = (
            round(r.started_at - started.timestamp(), 2) if r.started_at is not None else None
        )
        image["wave"] = waves.get(r.name)
        image["depends_on"] = list(depends_on.get(r.name, ()))
        image["material"] = materials.get(r.name)
        images.append(image)
    return {
        "version": VERSION,
        "started": _iso(started),
        "finished": _iso(finished),
        "seconds": round((finished - started).total_seconds(), 2),
        "revision": revision,
        "exit_code": outcomes.exit_code(results),
        "summary": outcomes.counts(results),
        "storage": dict(storage),
        "images": images,
    }


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def previous_materials(reports: Iterable[Mapping[str, Any]], names: set[str]) -> dict[str, Any]:
    """Per image, the material of its key in the newest report where that key was in the
    registry (built or already present): the key the image had before this run."""
    found: dict[str, Any] = {}
    for doc in reports:
        for image in doc.get("images") or []:
            name = image.get("name")
            if (
                name in names
                and name not in found
                and image.get("status") in PRESENT
                and image.get("material")
            ):
                found[name] = image["material"]
        if found.keys() >= names:
            break
    return found


def cache_ratio(images: Iterable[Mapping[str, Any]]) -> float | None:
    """Cached steps / all steps over the images built (None when nothing was built)."""
    built = [i for i in images if i.get("status") == "built" and i.get("cache_steps")]
    steps = sum(int(i["cache_steps"]) for i in built)
    return sum(int(i.get("cache_hits") or 0) for i in built) / steps if steps else None
